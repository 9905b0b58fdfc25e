#!/usr/bin/env bash
# The one-command local pipeline: installs what is missing, builds, then runs
# modelwatch-devkafka (mock Kafka) + a private redis-server + aggregator + agent + a synthetic
# model sending traffic, and shows what the aggregator computed.
#   deploy/local/demo.sh           run, show the results, stop everything
#   deploy/local/demo.sh --keep    leave the pipeline running until Ctrl-C
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
run="$root/deploy/local/run"
keep=0
[ "${1:-}" = "--keep" ] && keep=1

bash "$root/deploy/local/install-deps.sh"
# The demo runs the development tools (modelwatch-devkafka, modelwatch-loadgen) from the build
# directory; -Ddev_tools=true says so (and would install them with the rest).
if [ -f "$build/build.ninja" ]; then
  meson configure "$build" -Ddev_tools=true >/dev/null
else
  meson setup "$build" "$root" -Ddev_tools=true >/dev/null
fi
ninja -C "$build" >/dev/null

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

rm -rf "$run"
mkdir -p "$run"
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "demo: timed out waiting for $what (logs in $run)" >&2; exit 1; fi
    sleep 0.2
  done
}

redis_port=$(free_port); agg_port=$(free_port); agent_port=$(free_port)
echo "demo: starting modelwatch-devkafka, redis-server :$redis_port, aggregator :$agg_port, agent :$agent_port"
"$build/tools/modelwatch-devkafka" --bootstrap-file "$run/bootstrap" >"$run/devkafka.log" 2>&1 &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$run" \
  >"$run/redis.log" 2>&1 &
pids+=($!)
wait_for 15 "devkafka" test -s "$run/bootstrap"

cat >"$run/aggregator.yaml" <<YAML
kafka: {bootstrap_file: "$run/bootstrap"}
redis: {port: $redis_port}
http: {port: $agg_port}
YAML
cat >"$run/agent.yaml" <<YAML
agent_id: demo-agent
intake: {endpoint: "ipc://$run/agent.sock"}
kafka: {bootstrap_file: "$run/bootstrap"}
spool: {dir: "$run/spool"}
http: {port: $agent_port}
YAML
"$build/aggregator/modelwatch-aggregator" --config "$run/aggregator.yaml" >"$run/aggregator.log" 2>&1 &
pids+=($!)
"$build/agent/modelwatch-agent" --config "$run/agent.yaml" >"$run/agent.log" 2>&1 &
pids+=($!)
wait_for 15 "the aggregator" curl -sf "http://127.0.0.1:$agg_port/readyz"
wait_for 15 "the agent" curl -sf "http://127.0.0.1:$agent_port/readyz"

# Five minutes of traffic for two models, time-stamped in the last five minutes; the events of
# churn are also written to a CSV, the reference data its profile is built from.
start_ms=$(( ( $(date +%s) / 60 - 5 ) * 60000 ))
echo "demo: a synthetic model sends 20,000 predictions (5% errors, labels for 30%) over 5 one-minute windows"
"$build/tools/modelwatch-loadgen" --endpoint "ipc://$run/agent.sock" --model churn:v3 \
  --model fraud:v1 --events 20000 --windows 5 --start-ms "$start_ms" --error-share 0.05 \
  --labels 0.3 --dump-csv "$run/reference.csv" >"$run/sent.json"
wait_for 30 "the aggregator to apply every batch" sh -c \
  "curl -sf http://127.0.0.1:$agg_port/metrics | grep -q '^modelwatch_aggregator_predictions_total 20000$'"

ctl="$build/tools/modelwatch-ctl --api http://127.0.0.1:$agg_port"
echo
echo "\$ modelwatch-ctl profile build --model churn --version v3 ... reference.csv"
grep -E '^(model|churn),' "$run/reference.csv" >"$run/churn.csv"
$ctl profile build --model churn --version v3 --ignore model --ignore version \
  --ignore prediction_id --ignore latency_us --ignore status --label label -o "$run/churn-v3.profile.json" \
  "$run/churn.csv"
echo "\$ modelwatch-ctl profile push churn-v3.profile.json"
$ctl profile push "$run/churn-v3.profile.json"

# The current minute: churn's inputs shift by 15 (drift), fraud's do not.
now_ms=$(( ( $(date +%s) / 60 ) * 60000 ))
echo "demo: the next minute's churn traffic is shifted: its numeric features drift"
"$build/tools/modelwatch-loadgen" --endpoint "ipc://$run/agent.sock" --model churn:v3 \
  --events 3000 --start-ms "$now_ms" --shift 15 --seed 11 >/dev/null
wait_for 30 "the aggregator to apply the drifted traffic" sh -c \
  "curl -sf http://127.0.0.1:$agg_port/metrics | grep -q '^modelwatch_aggregator_predictions_total 23000$'"

echo
echo "\$ modelwatch-ctl models"
$ctl models
for m in churn fraud; do
  echo
  echo "\$ modelwatch-ctl windows $m --from $start_ms"
  $ctl windows "$m" --from "$start_ms"
done
echo
echo "\$ modelwatch-ctl drift churn --version v3"
$ctl drift churn --version v3
echo
echo "demo: the API is at http://127.0.0.1:$agg_port/api/v1/models, metrics at /metrics; logs in $run"
if [ "$keep" = 1 ]; then
  echo "demo: running until Ctrl-C"
  wait
fi
