#!/usr/bin/env bash
# Installs, from Debian's packages, whatever modelwatch needs to build, run and test that is not
# installed yet. Idempotent: with everything present it changes nothing and needs no network.
#   install-deps.sh          build + run dependencies
#   install-deps.sh --test   also what the tests use (redis-server, numpy/scipy/sklearn oracles,
#                            PyYAML (rule files, manifests and dashboards read back),
#                            jsonschema (API answers checked against the OpenAPI document),
#                            prometheus: promtool and the server test_prometheus scrapes with,
#                            valgrind, groff-base (man pages are checked with groff),
#                            python3-pip and python3-venv (the Python package is
#                            pip-installed into venvs), mypy (its type hints are checked),
#                            clang and libclang-rt-14-dev (libFuzzer and the sanitizer
#                            runtimes: the fuzz-smoke suite))
set -euo pipefail

packages=(
  gcc meson ninja-build pkg-config
  librdkafka-dev libprotobuf-c-dev protobuf-c-compiler libnanomsg-dev libzstd-dev libuv1-dev
  libhiredis-dev libcmocka-dev libyaml-dev libhttp-parser-dev libcurl4-openssl-dev
  libjansson-dev libssl-dev
  redis-server curl python3
)
if [ "${1:-}" = "--test" ]; then
  packages+=(python3-numpy python3-scipy python3-sklearn python3-yaml python3-jsonschema prometheus
    valgrind groff-base python3-pip python3-venv mypy)
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (or with sudo)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
# Packages such as redis-server and prometheus ship services; a build machine must not have
# them started behind its back, so service starts are refused while installing (the usual
# policy-rc.d mechanism), unless the machine already has a policy of its own.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
  own_policy=1
fi
cleanup() { if [ "$own_policy" = 1 ]; then rm -f "$policy"; fi; }
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
