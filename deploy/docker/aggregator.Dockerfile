# modelwatch-aggregator: the cluster service image. Build from the repository root:
#   docker build -f deploy/docker/aggregator.Dockerfile -t modelwatch/aggregator:0.1.0 .
# The build stage compiles with the -dev packages of meson's dependency() list; the runtime stage
# has only the shared libraries the binaries load (tests/integration/test_docker.py checks both
# lists against meson and ldd), and runs as uid 10001. modelwatch-ctl is in the image too, for
# `kubectl exec ... modelwatch-ctl`; the ready-made alert rules are in /usr/share/modelwatch/rules.
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
 && ninja -C /build aggregator/modelwatch-aggregator tools/modelwatch-ctl \
 && install -D -m 0755 /build/aggregator/modelwatch-aggregator /out/usr/bin/modelwatch-aggregator \
 && install -D -m 0755 /build/tools/modelwatch-ctl /out/usr/bin/modelwatch-ctl \
 && install -D -m 0644 /src/config/aggregator.example.yaml /out/etc/modelwatch/aggregator.yaml \
 && install -d /out/usr/share/modelwatch/rules \
 && install -m 0644 /src/config/rules/*.yaml /out/usr/share/modelwatch/rules/

FROM debian:${DEBIAN_RELEASE}-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      libcurl4 libhiredis0.14 libhttp-parser2.9 libjansson4 libprotobuf-c1 librdkafka1 libssl3 \
      libuv1 libyaml-0-2 libzstd1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 modelwatch \
 && useradd --system --uid 10001 --gid modelwatch --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin modelwatch
COPY --from=build /out/ /
USER 10001:10001
# the API, /metrics, /healthz, /readyz (http.port)
EXPOSE 9465
ENTRYPOINT ["/usr/bin/modelwatch-aggregator"]
CMD ["--config", "/etc/modelwatch/aggregator.yaml"]
