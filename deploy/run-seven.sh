#!/usr/bin/env bash
# Runs the seven markets as seven separate `huren-node run` processes on this machine, from
# the config files `huren-node devnet --init-only` writes. Ctrl-C stops all seven.
#
#   deploy/run-seven.sh [DIR] [BASE_PORT]      (defaults: deploy-data 7100)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-deploy-data}"
base_port="${2:-7100}"

cargo build --release -p huren-node -p huren-client
node="${CARGO_TARGET_DIR:-target}/release/huren-node"
configs=$("$node" devnet --dir "$dir" --base-port "$base_port" --init-only)

pids=()
stop() {
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop EXIT INT TERM

for config in $configs; do
    market=$(basename "$(dirname "$config")")
    "$node" run --config "$config" 2>>"$dir/$market/node.log" &
    pids+=("$!")
    echo "started $market (pid $!), log $dir/$market/node.log"
done
echo "seven nodes running; gRPC on ports $((base_port + 1))..$((base_port + 7)); Ctrl-C stops them"
wait
