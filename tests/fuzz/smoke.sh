#!/bin/sh
# smoke.sh FUZZER SCRATCH SECONDS DIR... — a bounded libFuzzer run of one target (suite
# 'fuzz-smoke'). New inputs go to SCRATCH (in the build directory), never into the committed
# corpus; the corpus and regression DIRs are read only. Fails on any crash, leak, timeout or
# sanitizer report (libFuzzer exits non-zero and leaves the input as SCRATCH/../crash-*).
set -eu
fuzzer=$1 scratch=$2 seconds=$3
shift 3
mkdir -p "$scratch"
cd "$(dirname "$scratch")"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$scratch" "$@"
