#!/bin/bash
# fuzz_long.sh — the long fuzz run: each libFuzzer target of tests/fuzz for up to RUNS
# executions, one target at a time, at the lowest CPU priority (nice -n 19).
#
#   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_lundef=false && ninja -C build-fuzz
#   bash bench/fuzz_long.sh build-fuzz [--runs N] [--max-seconds S] [TARGET...]
#
# Each target starts from a scratch copy of its committed corpus (tests/fuzz/corpus/<target>)
# plus its regression inputs; when it stops, what the run found that covers something new is
# merged back into the committed corpus with libFuzzer's -merge=1, so the corpus only grows by
# inputs that add coverage. A crash, leak, timeout or sanitizer report stops that target: its
# input is left in the scratch directory (named in the summary) to be fixed and kept in
# tests/fuzz/regressions/<target>/. One summary line per target (execs, exec/s, libFuzzer's
# final cov: and ft:, corpus size, crashes) goes to stdout and to FUZZ_SUMMARY (default
# fuzz-long.tsv in the build directory).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:?usage: fuzz_long.sh BUILD_DIR [--runs N] [--max-seconds S] [TARGET...]}" && pwd)
shift
runs=10000000
max_seconds=0 # 0: no time limit, stop at RUNS
targets=()
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2; shift 2 ;;
    --max-seconds) max_seconds=$2; shift 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$here"/tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets+=("${t#fuzz_}")
    done
fi
summary=${FUZZ_SUMMARY:-$build/fuzz-long.tsv}
scratch_root=$(mktemp -d "${TMPDIR:-/tmp}/mw-fuzz-long.XXXXXX")
echo "scratch: $scratch_root" >&2
printf 'target\texecs\texec_per_s\tcov\tft\tcorpus_files\tcorpus_bytes\tcrashes\tseconds\n' |
    tee -a "$summary"

for t in "${targets[@]}"; do
    fuzzer=$build/tests/fuzz/fuzz_$t
    corpus=$here/tests/fuzz/corpus/$t
    regressions=$here/tests/fuzz/regressions/$t
    [ -x "$fuzzer" ] || { echo "$fuzzer: not built (-Dfuzzing=true)" >&2; exit 1; }
    work=$scratch_root/$t
    mkdir -p "$work/corpus"
    cp "$corpus"/* "$work/corpus/"
    seeds=("$work/corpus")
    [ -d "$regressions" ] && seeds+=("$regressions")
    start=$(date +%s)
    status=0
    (cd "$work" && nice -n 19 "$fuzzer" -runs="$runs" -max_total_time="$max_seconds" \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/" \
        "${seeds[@]}" >"$work/log" 2>&1) || status=$?
    seconds=$(($(date +%s) - start))
    # The last status line has the final coverage: "#N DONE cov: C ft: F corp: ..."
    last=$(grep -E '^#[0-9]+' "$work/log" | tail -1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$work/log")
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+)/\1/p' "$work/log")
    crashes=$(find "$work" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
        -o -name 'oom-*' \) | wc -l)
    [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ] && crashes="exit-$status"
    # Back into the committed corpus: only what adds coverage to it.
    nice -n 19 "$fuzzer" -merge=1 -timeout=10 -rss_limit_mb=2048 "$corpus" "$work/corpus" \
        >"$work/merge.log" 2>&1 || echo "$t: merge failed, see $work/merge.log" >&2
    files=$(find "$corpus" -type f | wc -l)
    bytes=$(du -sb "$corpus" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" \
        "${ft:-?}" "$files" "$bytes" "$crashes" "$seconds" | tee -a "$summary"
    if [ "$crashes" != 0 ]; then
        echo "$t: see $work/log and $work/crash-* (or leak-/timeout-/oom-)" >&2
    fi
done
