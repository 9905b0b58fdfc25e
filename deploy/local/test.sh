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

# The same suites again in a second build with AddressSanitizer and UndefinedBehaviorSanitizer
# (LeakSanitizer included): any report, a memory error, undefined behaviour or memory still
# allocated when a process exits, fails the test that caused it. tests/integration/harness.py
# collects the reports of every process a test starts. -fsanitize=undefined leaves out
# float-cast-overflow (a double out of an integer's range converted to it), which bad input
# can reach, so it is added. The instrumented binaries run about twice as slowly, hence the
# longer timeouts.
asan_build="$build-asan"
if [ ! -f "$asan_build/build.ninja" ]; then
  meson setup "$asan_build" "$root" --werror -Ddev_tools=true \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args='-fsanitize=float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer'
fi
ninja -C "$asan_build"
ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1 \
UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1 \
  meson test -C "$asan_build" --print-errorlogs --num-processes 2 --timeout-multiplier 3 "$@"

# The fuzz targets (tests/fuzz) as libFuzzer binaries: a clang build of its own, with
# -Dfuzzing=true (coverage instrumentation, address and undefined-behaviour sanitizers), runs
# suite 'fuzz-smoke', each target for a bounded time from its committed corpus.
fuzz_build="$build-fuzz"
if [ ! -f "$fuzz_build/build.ninja" ]; then
  CC=clang meson setup "$fuzz_build" "$root" -Dfuzzing=true -Db_lundef=false -Ddev_tools=true
fi
meson test -C "$fuzz_build" --suite fuzz-smoke --print-errorlogs --num-processes 2
