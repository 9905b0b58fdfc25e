#!/usr/bin/env bash
# bench/aggregator_throughput: sampled records/s one aggregator decodes, windows and applies to
# a local Redis, Redis commands per 1k records, and instructions per record from callgrind.
#   bash bench/aggregator_throughput.sh [BUILD_DIR]
set -euo pipefail
build="${1:-build}"
exe="$build/bench/mw-bench-aggregator"
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" \
  >"$dir/redis.log" 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null; wait $redis_pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "== decode + window + plan, one core (process CPU time), 200 batches x 1000 records"
taskset -c 0 "$exe" -b 200 -r 1000
echo "== the same, applied to redis-server (pipelined EVALSHA per model per batch), wall clock"
redis-cli -p "$port" flushall >/dev/null
taskset -c 0 "$exe" -b 200 -r 1000 -p "$port"
if command -v valgrind >/dev/null; then
  echo "== instructions per record (callgrind on the measured loop only: decode + plan)"
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$dir/cg.out" \
    "$exe" -b 20 -r 1000 >/dev/null 2>"$dir/cg.log"
  total=$(grep -E "^totals:" "$dir/cg.out" | head -1 | awk '{print $2}')
  echo "{\"instructions\": $total, \"records\": 20000, \"instructions_per_record\": $((total / 20000))}"
fi
