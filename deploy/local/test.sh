#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every suite (unit, integration)
# with `meson test`. Each integration scenario starts and stops its own redis-server,
# modelwatch-devkafka and binaries on free loopback ports.
#   deploy/local/test.sh [BUILD_DIR] [extra meson test arguments...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
shift || true

bash "$root/deploy/local/install-deps.sh" --test
# The integration tests run the development tools (modelwatch-devkafka, modelwatch-loadgen) from
# the build directory; -Ddev_tools=true says so (and test_install checks they are installed).
if [ -f "$build/build.ninja" ]; then
  meson configure "$build" -Ddev_tools=true
else
  meson setup "$build" "$root" --werror -Ddev_tools=true
fi
ninja -C "$build"
meson test -C "$build" --print-errorlogs --num-processes 2 "$@"

# The fuzz targets (tests/fuzz) as libFuzzer binaries: a clang build of its own, with
# -Dfuzzing=true (coverage instrumentation, address and undefined-behaviour sanitizers), runs
# suite 'fuzz-smoke', each target for a bounded time from its committed corpus.
fuzz_build="$build-fuzz"
if [ ! -f "$fuzz_build/build.ninja" ]; then
  CC=clang meson setup "$fuzz_build" "$root" -Dfuzzing=true -Db_lundef=false -Ddev_tools=true
fi
meson test -C "$fuzz_build" --suite fuzz-smoke --print-errorlogs --num-processes 2
