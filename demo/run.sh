#!/usr/bin/env bash
# `make demo`: the daemon runs the simulated lobby in the background and the receptionist's
# console runs in the foreground; quitting the console (q, or Ctrl+C on its screen) stops the
# daemon too. DEMO_SECONDS=N stops after N seconds (for unattended runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
config=demo/checkpoint.toml
mkdir -p demo-data

# The daemon gets a session of its own: Ctrl+C in the terminal goes to the terminal's
# foreground process group, and the console's visitor form takes it as "cancel". Sharing the
# group, the daemon would stop at every cancelled form. (A background job of a script is not a
# group leader, so setsid execs the daemon itself: $! is its pid, and it stays our child.)
setsid "$bin/checkpoint" run --simulate --config "$config" >demo-data/daemon.log 2>&1 </dev/null &
daemon=$!
stop() {
    kill -TERM "$daemon" 2>/dev/null || true
    wait "$daemon" 2>/dev/null || true
}
# In its own session the daemon no longer hears the terminal's hang-up either: whatever ends
# this script (the console quitting, Ctrl+C before it starts, a closed terminal, a kill) stops it.
trap stop EXIT
trap 'exit 129' HUP
trap 'exit 143' TERM

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
