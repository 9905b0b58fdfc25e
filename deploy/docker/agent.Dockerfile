# modelwatch-agent: the sidecar image. Build from the repository root:
#   docker build -f deploy/docker/agent.Dockerfile -t modelwatch/agent:0.1.0 .
# The build stage compiles with the -dev packages of meson's dependency() list; the runtime stage
# has only the shared libraries the binary loads (tests/integration/test_docker.py checks both
# lists against meson and ldd), and runs as uid 10001. /bin/sh stays (Debian's essential set):
# the Kubernetes manifests render the agent's configuration with it in an init container.
ARG DEBIAN_RELEASE=bookworm

FROM debian:${DEBIAN_RELEASE}-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc libc6-dev meson ninja-build pkg-config python3 protobuf-c-compiler \
      librdkafka-dev libprotobuf-c-dev libnanomsg-dev libzstd-dev libuv1-dev libhiredis-dev \
      libyaml-dev libhttp-parser-dev libcurl4-openssl-dev libjansson-dev libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN meson setup /build /src --buildtype=release --prefix=/usr -Dtests=false -Ddev_tools=false \
 && ninja -C /build agent/modelwatch-agent \
 && install -D -m 0755 /build/agent/modelwatch-agent /out/usr/bin/modelwatch-agent \
 && install -D -m 0644 /src/config/agent.example.yaml /out/etc/modelwatch/agent.yaml

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libhttp-parser2.9 libjansson4 libnanomsg5 libprotobuf-c1 librdkafka1 libssl3 libuv1 \
      libyaml-0-2 \
      libzstd1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 modelwatch \
 && useradd --system --uid 10001 --gid modelwatch --home-dir /var/lib/modelwatch \
      --no-create-home --shell /usr/sbin/nologin modelwatch \
 && install -d -o modelwatch -g modelwatch -m 0750 \
      /var/lib/modelwatch /var/lib/modelwatch/spool /run/modelwatch
COPY --from=build /out/ /
USER 10001:10001
# /metrics, /healthz, /readyz (http.port)
EXPOSE 9464
ENTRYPOINT ["/usr/bin/modelwatch-agent"]
CMD ["--config", "/etc/modelwatch/agent.yaml"]
