#!/usr/bin/env bash
# The one-command local pipeline, and a story told with it. Installs what is missing, builds,
# then starts modelwatch-devkafka (mock Kafka), a private redis-server, two aggregator replicas,
# two agents (two pods of one model) and tools/alert_receiver.py standing in for PagerDuty, and
# drives a synthetic model (modelwatch-loadgen) through a story in accelerated event time:
#
#   normal traffic -> feature f3 drifts -> v2 rolls out with a latency regression -> rollback
#
# While it runs, deploy/local/live_view.py shows per model and version the requests per second,
# error rate, p99, worst drifting feature, accuracy, cost per 1k and the alerts firing, read
# from the aggregators' /metrics; at the end deploy/local/demo_report.py prints the pages and
# resolves the receiver got and where to look next.
#
#   deploy/local/demo.sh                   the story in about three minutes, then stop
#   deploy/local/demo.sh --duration 40     the same story in 40 seconds (20 to 3600)
#   deploy/local/demo.sh --keep            leave the pipeline running until Ctrl-C
#   deploy/local/demo.sh --build-dir DIR   use an existing build (installs and builds nothing)
#   deploy/local/demo.sh --run-dir DIR     configs, logs and the receiver's log (default
#                                          deploy/local/run; emptied first, so it must be
#                                          new, empty, or an earlier demo's)
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1 # the demo's Python scripts leave nothing in the source tree
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$root/build"
default_run="$root/deploy/local/run"
run=$default_run
keep=0
duration=180
prebuilt=0

usage() {
  sed -n '/^#   deploy/,/^set /s/^# //p' "${BASH_SOURCE[0]}" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --duration) [ $# -ge 2 ] || usage; duration=$2; shift ;;
    --build-dir) [ $# -ge 2 ] || usage; build=$(cd "$2" && pwd); prebuilt=1; shift ;;
    --run-dir) [ $# -ge 2 ] || usage; run=$2; shift ;;
    *) echo "demo: unknown argument: $1" >&2; usage ;;
  esac
  shift
done
if ! [[ "$duration" =~ ^[0-9]+$ ]] || [ "$duration" -lt 20 ] || [ "$duration" -gt 3600 ]; then
  echo "demo: --duration must be a whole number of seconds from 20 to 3600, not '$duration'" >&2
  exit 2
fi

if [ "$prebuilt" = 0 ]; then
  bash "$root/deploy/local/install-deps.sh"
  # The demo runs the development tools (modelwatch-devkafka, modelwatch-loadgen) from the
  # build directory; -Ddev_tools=true says so (and would install them with the rest).
  if [ -f "$build/build.ninja" ]; then
    meson configure "$build" -Ddev_tools=true >/dev/null
  else
    meson setup "$build" "$root" -Ddev_tools=true >/dev/null
  fi
  ninja -C "$build" >/dev/null
fi
for exe in tools/modelwatch-devkafka tools/modelwatch-loadgen tools/modelwatch-ctl \
  aggregator/modelwatch-aggregator agent/modelwatch-agent; do
  if [ ! -x "$build/$exe" ]; then
    echo "demo: $build/$exe is missing: build first (or leave out --build-dir)" >&2
    exit 1
  fi
done

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ms() { date +%s%3N; }

# The run directory is emptied first: one given with --run-dir must be empty or one an earlier
# demo left (marked).
if [ "$run" != "$default_run" ] && [ -d "$run" ] && [ -n "$(ls -A "$run")" ] &&
  [ ! -e "$run/.modelwatch-demo" ]; then
  echo "demo: $run is not empty and no earlier demo's: give an empty or new --run-dir" >&2
  exit 2
fi
rm -rf "$run"
mkdir -p "$run"
run=$(cd "$run" && pwd)
touch "$run/.modelwatch-demo"
pids=()
live_pid=""
stop_all() { # the last started first: agents and aggregators before Kafka and Redis
  if [ -n "$live_pid" ]; then kill -TERM "$live_pid" 2>/dev/null || true; fi
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "demo: timed out waiting for $what (logs in $run)" >&2
      exit 1
    fi
    sleep 0.2
  done
}

# ---- the pipeline --------------------------------------------------------------------------
redis_port=$(free_port)
agg_ports=("$(free_port)" "$(free_port)")
agent_ports=("$(free_port)" "$(free_port)")
echo "demo: starting modelwatch-devkafka, redis-server :$redis_port, the PagerDuty stand-in,"
echo "      aggregators :${agg_ports[0]} and :${agg_ports[1]}," \
  "agents :${agent_ports[0]} and :${agent_ports[1]}"
"$build/tools/modelwatch-devkafka" --bootstrap-file "$run/bootstrap" >"$run/devkafka.log" 2>&1 &
pids+=($!)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes \
  --appendfsync everysec --dir "$run" >"$run/redis.log" 2>&1 &
pids+=($!)
python3 "$root/tools/alert_receiver.py" --port-file "$run/receiver.port" \
  --log "$run/receiver.jsonl" >"$run/receiver.log" 2>&1 &
pids+=($!)
wait_for 15 "devkafka" test -s "$run/bootstrap"
wait_for 15 "the PagerDuty stand-in" test -s "$run/receiver.port"
receiver_port=$(cat "$run/receiver.port")

# The routing key is PagerDuty's integration key; the stand-in accepts any.
echo "demo-routing-key-0123456789abcdef" >"$run/pagerduty.key"
for i in 0 1; do
  cat >"$run/aggregator-$i.yaml" <<YAML
kafka:
  bootstrap_file: "$run/bootstrap"
  properties:
    # The second replica joins the consumer group, and takes its share of the partitions,
    # within a second or two instead of librdkafka's default 3 s heartbeats and 45 s session.
    session.timeout.ms: "6000"
    heartbeat.interval.ms: "500"
redis: {port: $redis_port}
# The story's event time runs minutes ahead in seconds: a window is final as soon as the
# model's traffic is 5 s of event time past its end, and /metrics shows final windows only.
windows: {allowed_lateness: 0s, out_of_orderness: 5s}
http: {port: ${agg_ports[$i]}, signals_refresh: 1s, signals_delay: 1h}
drift: {windows: fine, min_values: 50}
cost: {cpu_core_hour: 0.04, memory_gib_hour: 0.005, pod_hour: 0.01}
rule_files: ["$root/deploy/local/demo-rules.yaml"]
route:
  receiver: pagerduty
  group_by: [alertname, model]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4h
receivers:
  - name: pagerduty
    type: pagerduty
    url: http://127.0.0.1:$receiver_port/pd
    routing_key_file: "$run/pagerduty.key"
    retry: {initial: 100ms, max: 1s}
alerting:
  runbook_base_url: "file://$root"
  evaluation_interval: 500ms
  lease_ttl: 3s
YAML
  "$build/aggregator/modelwatch-aggregator" --config "$run/aggregator-$i.yaml" \
    >"$run/aggregator-$i.log" 2>&1 &
  pids+=($!)
  # One at a time: each is ready once it holds partitions of the telemetry topic.
  wait_for 30 "aggregator $i to hold Kafka partitions" \
    curl -sf "http://127.0.0.1:${agg_ports[$i]}/readyz"
done
for i in 0 1; do
  cat >"$run/agent-$i.yaml" <<YAML
agent_id: demo-pod-$i
intake: {endpoint: "ipc://$run/agent-$i.sock"}
kafka: {bootstrap_file: "$run/bootstrap"}
spool: {dir: "$run/spool-$i", fsync: false}
http: {port: ${agent_ports[$i]}}
# Every payload is shipped, so drift and accuracy see every prediction.
models:
  - name: "*"
    sample_rate: 1.0
    max_events_per_second: 0
resources: {requested_cores: 2, requested_memory: 4GiB}
YAML
  "$build/agent/modelwatch-agent" --config "$run/agent-$i.yaml" >"$run/agent-$i.log" 2>&1 &
  pids+=($!)
done
for i in 0 1; do
  wait_for 30 "agent $i" curl -sf "http://127.0.0.1:${agent_ports[$i]}/readyz"
done
ctl=("$build/tools/modelwatch-ctl" --api "http://127.0.0.1:${agg_ports[0]}")
loadgen="$build/tools/modelwatch-loadgen"

# ---- the story -------------------------------------------------------------------------------
# Phases: name, one-minute windows of event time, what the model serves, and what it sends.
phases=(normal drift rollout rollback)
declare -A phase_windows=([normal]=3 [drift]=4 [rollout]=4 [rollback]=7)
declare -A phase_models=([normal]="churn:v1" [drift]="churn:v1" [rollout]="churn:v1 churn:v2"
  [rollback]="churn:v1")
declare -A phase_extra=([normal]="" [drift]="--shift 40 --shift-feature f3"
  [rollout]="--latency-scale 20 --slow churn:v2" [rollback]="")
declare -A phase_text=(
  [normal]="normal traffic: churn v1 serves every prediction"
  [drift]="an upstream change shifts feature f3 by 40: its distribution drifts from the reference"
  [rollout]="f3 is fixed; v2 rolls out to half of the traffic with 20x its latency"
  [rollback]="v2 is rolled back: v1 serves everything again")
n_windows=0
for p in "${phases[@]}"; do n_windows=$((n_windows + phase_windows[$p])); done
per_version=600 # predictions per version and window, split between the two pods
slot_ms=$((duration * 1000 / n_windows))
# The story ends two minutes of event time before it starts by the wall clock, so event time
# never runs ahead of the aggregators' clock however fast it is played.
story_start_ms=$((($(date +%s) / 60 - n_windows - 2) * 60000))

# The model's reference data: an hour before the story, 6,000 predictions of v1, written to a
# CSV as they are sent; v1's and v2's profiles are built from it (v2 was trained on the same
# data) and pushed to the aggregators.
echo "demo: sending the reference traffic and pushing churn's profiles"
"$loadgen" --endpoint "ipc://$run/agent-0.sock" --model churn:v1 --events 6000 --windows 10 \
  --in-order --start-ms $((story_start_ms - 3600000)) --id-prefix ref --labels 0.5 \
  --label-delay-ms 20000 \
  --dump-csv "$run/reference.csv" >"$run/reference.json"
for v in v1 v2; do
  "${ctl[@]}" profile build --model churn --version "$v" --ignore model --ignore version \
    --ignore prediction_id --ignore latency_us --ignore status --label label \
    -o "$run/churn-$v.profile.json" "$run/reference.csv" >/dev/null
  "${ctl[@]}" profile push "$run/churn-$v.profile.json" >/dev/null
done

live_args=(--metrics "http://127.0.0.1:${agg_ports[0]}/metrics"
  --metrics "http://127.0.0.1:${agg_ports[1]}/metrics" --phase-file "$run/phase")
echo "demo: the story: ${n_windows} minutes of event time in ${duration} s (${phases[*]})"
python3 "$root/deploy/local/live_view.py" "${live_args[@]}" &
live_pid=$!

# Send one window of event time: each pod's share of every version the phase serves, paced
# over the window's slot of wall time less what loadgen needs besides (it starts, then waits
# half a second for the library to hand its queue over), with labels for half of the predictions, each
# known 20 s of event time after its prediction, as ground truth comes after its prediction.
send_window() { # send_window PHASE WINDOW_INDEX
  local phase=$1 w=$2 pod models=() extra n_versions=0
  for m in ${phase_models[$phase]}; do models+=(--model "$m"); n_versions=$((n_versions + 1)); done
  read -r -a extra <<<"${phase_extra[$phase]}"
  local events=$((per_version / 2 * n_versions))
  local send_ms=$((slot_ms - 700))
  if [ "$send_ms" -lt $((slot_ms / 3)) ]; then send_ms=$((slot_ms / 3)); fi
  local rate=$((events * 1000 / send_ms))
  local sends=()
  for pod in 0 1; do
    "$loadgen" --endpoint "ipc://$run/agent-$pod.sock" "${models[@]}" "${extra[@]}" \
      --events "$events" --windows 1 --in-order --start-ms $((story_start_ms + w * 60000)) \
      --seed $((w * 2 + pod + 1)) --id-prefix "p$pod-w$w" --error-share 0.01 --labels 0.5 \
      --label-delay-ms 20000 \
      --rate "$rate" >>"$run/story-pod-$pod.jsonl" 2>>"$run/loadgen.log" &
    sends+=($!)
  done
  for pid in "${sends[@]}"; do
    if ! wait "$pid"; then echo "demo: loadgen failed (see $run/loadgen.log)" >&2; exit 1; fi
  done
}

w=0
story_t0=$(now_ms)
for p in "${phases[@]}"; do
  for ((k = 0; k < phase_windows[$p]; k++)); do
    window_start=$((story_start_ms + w * 60000))
    printf '%s\t%s\t%d\t%d\t%d\n' "$p" "${phase_text[$p]}" "$w" "$n_windows" "$window_start" \
      >"$run/phase.tmp"
    mv "$run/phase.tmp" "$run/phase"
    send_window "$p" "$w"
    w=$((w + 1))
    left=$((story_t0 + w * slot_ms - $(now_ms)))
    if [ "$left" -gt 0 ]; then sleep "$(printf '%d.%03d' $((left / 1000)) $((left % 1000)))"; fi
  done
done
# Deliveries of the last evaluations: group_interval is 2 s.
sleep 4
printf 'end\tthe story is over\t%d\t%d\t%d\n' "$n_windows" "$n_windows" \
  $((story_start_ms + n_windows * 60000)) >"$run/phase"
sleep 1.5
kill -TERM "$live_pid" 2>/dev/null || true
wait "$live_pid" 2>/dev/null || true
live_pid=""

python3 "$root/deploy/local/demo_report.py" --log "$run/receiver.jsonl" \
  --api "http://127.0.0.1:${agg_ports[0]}" --api "http://127.0.0.1:${agg_ports[1]}" \
  --ctl "$build/tools/modelwatch-ctl" --root "$root" --run-dir "$run" \
  --story-start-ms "$story_start_ms" \
  --sent "$run/reference.json" "$run/story-pod-0.jsonl" "$run/story-pod-1.jsonl"
if [ "$keep" = 1 ]; then
  echo "demo: running until Ctrl-C"
  wait
fi
