#!/usr/bin/env bash
# `make demo`: the daemon runs the simulated lobby in the background and the receptionist's
# console runs in the foreground; quitting the console (Ctrl+C) stops the daemon too.
# DEMO_SECONDS=N stops after N seconds (for unattended runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
config=demo/checkpoint.toml
mkdir -p demo-data

"$bin/checkpoint" run --simulate --config "$config" >demo-data/daemon.log 2>&1 &
daemon=$!
stop() {
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
}
trap stop EXIT

sleep 1.5
if ! kill -0 "$daemon" 2>/dev/null; then
    echo "the daemon did not start; its log (demo-data/daemon.log) says:" >&2
    cat demo-data/daemon.log >&2
    exit 1
fi
echo "daemon running (log: demo-data/daemon.log); starting the console" >&2
args=(console --config "$config")
if [[ -n "${DEMO_SECONDS:-}" ]]; then
    args+=(--duration "$DEMO_SECONDS")
fi
"$bin/checkpoint" "${args[@]}"
