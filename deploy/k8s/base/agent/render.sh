#!/bin/sh
# Renders the agent's configuration for this pod: the template (agent.yaml of ConfigMap
# modelwatch-agent-config) with the pod's IP and the sums of the CPU and memory its containers
# request (the configuration's ${ENV} expansion substitutes values; it cannot add). Runs as the
# init container render-agent-config, before the agent sidecar starts, and checks the result with
# the agent's own --check-config so that a bad file stops the pod here, with the reason.
#
# Environment (downward API): POD_IP; MODEL_CPU_MILLICORES, AGENT_CPU_MILLICORES
# (requests.cpu, divisor 1m); MODEL_MEMORY_BYTES, AGENT_MEMORY_BYTES (requests.memory).
# Arguments: TEMPLATE OUTPUT.
set -eu
template=${1:-/etc/modelwatch-template/agent.yaml}
output=${2:-/etc/modelwatch/agent.yaml}

fail() { echo "render-agent-config: $*" >&2; exit 1; }
for var in POD_IP MODEL_CPU_MILLICORES AGENT_CPU_MILLICORES MODEL_MEMORY_BYTES AGENT_MEMORY_BYTES; do
  eval "value=\${$var:-}"
  [ -n "$value" ] || fail "$var is not set"
  case $var in
    POD_IP) case $value in *[!0-9a-fA-F.:]*) fail "POD_IP=$value is not an IP address" ;; esac ;;
    *) case $value in *[!0-9]*) fail "$var=$value is not a whole number" ;; esac ;;
  esac
done

millicores=$((MODEL_CPU_MILLICORES + AGENT_CPU_MILLICORES))
cores=$((millicores / 1000)).$(printf '%03d' $((millicores % 1000)))
memory_bytes=$((MODEL_MEMORY_BYTES + AGENT_MEMORY_BYTES))

sed -e "s/@POD_IP@/$POD_IP/g" \
    -e "s/@REQUESTED_CORES@/$cores/g" \
    -e "s/@REQUESTED_MEMORY@/$memory_bytes/g" \
    "$template" >"$output.tmp"
mv "$output.tmp" "$output"
echo "render-agent-config: $output: http.host $POD_IP, requested_cores $cores, requested_memory $memory_bytes"
exec "${MODELWATCH_AGENT:-modelwatch-agent}" --config "$output" --check-config
