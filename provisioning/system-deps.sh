#!/usr/bin/env bash
# Install the Debian packages that building and testing Checkpoint need (bluezero pulls in
# dbus-python and PyGObject, which compile against these headers). Idempotent: does nothing when
# everything is present. Used by `make install` and `.ci/run`.
set -euo pipefail

packages=(
    libdbus-1-dev libglib2.0-dev libgirepository1.0-dev libcairo2-dev
    dbus-daemon pkg-config gcc
    sqlite3 shellcheck tmux systemd debootstrap
    postgresql
)

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
    exit 0
fi

echo "system-deps: installing ${missing[*]}" >&2
if [[ $EUID -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "system-deps: missing packages and not root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
