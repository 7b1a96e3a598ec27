#!/usr/bin/env bash
# Install Checkpoint on a door unit: Raspberry Pi OS (based on Debian 12 or 13, arm64 or armhf)
# or plain Debian 12/13. Run it as root from a checkout of this repository:
#
#     sudo provisioning/install.sh [--no-start] [--no-console] [--root DIR]
#
# What it sets up, each step only when it is not already so (a second run changes nothing and
# says so):
#   - Debian packages: Python, BlueZ, D-Bus and GLib bindings (and lgpio where the archive has it);
#   - the group `checkpoint`, the daemon's user `checkpoint` (groups gpio, bluetooth) and the
#     console's user `checkpoint-console`;
#   - a virtual environment under /opt/checkpoint/venv holding this checkout's version, with the
#     system's dbus-python and PyGObject (nothing is compiled on the Pi);
#   - /etc/checkpoint/checkpoint.toml from provisioning/checkpoint.toml, only if there is none;
#   - /var/lib/checkpoint (setgid, shared with the console through the group);
#   - the systemd units of systemd/ under /usr/local/lib/systemd/system, enabled; the console
#     takes tty1 from its getty (--no-console leaves tty1 alone);
#   - bluetoothd with --experimental (passive scanning), journald limits for an SD card, and a
#     udev rule giving the GPIO chips to the group gpio;
#   - then (re)starts what changed, unless --no-start.
#
# --root DIR installs into the Debian tree DIR instead (made with debootstrap, or an image being
# built): the same steps run inside `chroot DIR`, and nothing is started.
set -euo pipefail

PREFIX=/opt/checkpoint
VENV=$PREFIX/venv
LIBEXEC=$PREFIX/libexec
CONFIG_DIR=/etc/checkpoint
STATE_DIR=/var/lib/checkpoint
UNIT_DIR=/usr/local/lib/systemd/system
DAEMON_USER=checkpoint
CONSOLE_USER=checkpoint-console
GROUP=checkpoint
STAGE=/var/tmp/checkpoint-install   # where --root copies the source inside the tree

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
root=""
start=1
console=1
any_os=0
inside=0

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --root DIR    install into the Debian tree DIR (chroot); implies --no-start
  --no-start    install and enable, but start and restart nothing
  --no-console  do not put the console on tty1
  --any-os      do not stop on an unsupported release (at your own risk)
  -h, --help    this text
EOF
}

die() {
    echo "install: error: $*" >&2
    exit 1
}

while (($#)); do
    case "$1" in
        --root)
            [[ $# -ge 2 && -n "$2" ]] || die "--root needs a directory"
            root=$2
            shift 2
            ;;
        --root=*) root=${1#--root=}; shift ;;
        --no-start) start=0; shift ;;
        --no-console) console=0; shift ;;
        --any-os) any_os=1; shift ;;
        --in-chroot) inside=1; start=0; shift ;;  # internal: the second half of --root
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

[[ $EUID -eq 0 ]] || die "run me as root (sudo $0)"

# --- --root: copy the source into the tree and run the same script inside it ---------------------
if [[ -n "$root" ]]; then
    root=$(cd "$root" 2>/dev/null && pwd) || die "--root: no directory $root"
    [[ "$root" != / ]] || die "--root /: run without --root to install on this machine"
    [[ -f "$root/etc/os-release" && -x "$root/bin/bash" ]] ||
        die "--root: $root is not a Debian tree (no etc/os-release or bin/bash)"

    mounted_proc=0
    made_policy=0
    made_resolv=0
    # shellcheck disable=SC2317  # run by the trap
    cleanup() {
        if ((mounted_proc)) && ! umount "$root/proc"; then
            echo "install: warning: $root/proc is busy; detached it (umount -l)" >&2
            umount -l "$root/proc" || true
        fi
        ((made_policy)) && rm -f "$root/usr/sbin/policy-rc.d"
        # The host's resolver was only for the downloads: it must not end up in an image.
        ((made_resolv)) && rm -f "$root/etc/resolv.conf"
        rm -rf "${root:?}$STAGE"
    }
    trap cleanup EXIT

    rm -rf "${root:?}$STAGE"
    mkdir -p "$root$STAGE"
    tar -C "$src" --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
        -cf - pyproject.toml README.md appliance collector systemd provisioning |
        tar -C "$root$STAGE" -xf -
    if ! mountpoint -q "$root/proc"; then
        mount -t proc proc "$root/proc"
        mounted_proc=1
    fi
    # Package scripts must not start services in a tree that is not running.
    if [[ ! -e "$root/usr/sbin/policy-rc.d" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
        chmod 755 "$root/usr/sbin/policy-rc.d"
        made_policy=1
    fi
    if [[ ! -e "$root/etc/resolv.conf" && ! -L "$root/etc/resolv.conf" ]]; then
        cp /etc/resolv.conf "$root/etc/resolv.conf"
        made_resolv=1
    fi

    inner=(--in-chroot)
    ((console)) || inner+=(--no-console)
    ((any_os)) && inner+=(--any-os)
    environment=(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive)
    for name in PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_CERT http_proxy https_proxy no_proxy; do
        [[ -n "${!name:-}" ]] && environment+=("$name=${!name}")
    done
    status=0
    chroot "$root" /usr/bin/env -i "${environment[@]}" \
        /bin/bash "$STAGE/provisioning/install.sh" "${inner[@]}" || status=$?
    exit "$status"
fi

# --- the installation itself, on this machine (or inside the tree) -------------------------------
changes=0
changed() {
    changes=$((changes + 1))
    echo "install: $*"
}
note() { echo "install: $*"; }

systemd_running() { [[ -d /run/systemd/system ]] && ((!inside)); }

# Release and architecture.
# shellcheck disable=SC1091
. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
    debian:12 | debian:13 | raspbian:12 | raspbian:13) ;;
    *)
        ((any_os)) || die "${PRETTY_NAME:-this system} is not supported: Debian 12 or 13, or" \
            "Raspberry Pi OS based on them (--any-os to try anyway)"
        note "warning: ${PRETTY_NAME:-unknown release} is not supported; going on (--any-os)"
        ;;
esac
arch=$(dpkg --print-architecture)
case "$arch" in
    arm64 | armhf | amd64) ;;
    *) note "warning: architecture $arch is untested (arm64, armhf and amd64 are)" ;;
esac

# 1. Packages. dbus-python and PyGObject come from Debian, so nothing compiles on the Pi.
packages=(python3 python3-venv python3-dbus python3-gi python3-cairo bluez ca-certificates
    sqlite3 systemd)
missing=()
installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }
for pkg in "${packages[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    apt-get clean  # the downloaded .debs: not on a card (or in an image)
    changed "packages installed: ${missing[*]}"
fi
# gpiozero drives the pins through lgpio: Raspberry Pi OS has it packaged, plain Debian has not.
if ! installed python3-lgpio && apt-cache show python3-lgpio >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends python3-lgpio >/dev/null
    apt-get clean
    changed "packages installed: python3-lgpio"
fi

# 2. Groups and users.
ensure_group() {
    getent group "$1" >/dev/null || {
        groupadd --system "$1"
        changed "group $1 created"
    }
}
ensure_user() {  # name, home, comment
    getent passwd "$1" >/dev/null || {
        useradd --system --gid "$GROUP" --home-dir "$2" --no-create-home \
            --shell /usr/sbin/nologin --comment "$3" "$1"
        changed "user $1 created"
    }
}
ensure_member() {  # user, group
    id -nG "$1" | tr ' ' '\n' | grep -qx "$2" || {
        usermod -a -G "$2" "$1"
        changed "user $1 added to group $2"
    }
}
for group in "$GROUP" gpio bluetooth; do
    ensure_group "$group"
done
ensure_user "$DAEMON_USER" "$STATE_DIR" "Checkpoint door unit"
ensure_user "$CONSOLE_USER" /nonexistent "Checkpoint console"
ensure_member "$DAEMON_USER" gpio
ensure_member "$DAEMON_USER" bluetooth

# 3. Directories and files, each compared before it is written.
ensure_mode() {  # path, mode, owner, group, what it is; succeeds when it changed something
    [[ "$(stat -L -c '%a %U %G' "$1")" != "$(printf '%o' "0$2") $3 $4" ]] || return 1
    chown "$3:$4" "$1"
    chmod "$2" "$1"
    changed "$5 $1: mode $2, owner $3:$4"
}
ensure_dir() {  # path, mode, owner, group
    if [[ ! -d "$1" ]]; then
        install -d -m "$2" -o "$3" -g "$4" "$1"
        changed "directory $1"
    else
        ensure_mode "$1" "$2" "$3" "$4" directory || true
    fi
}
ensure_file() {  # source, destination, mode, owner, group
    if [[ ! -f "$2" ]] || ! cmp -s "$1" "$2"; then
        install -D -m "$3" -o "$4" -g "$5" "$1" "$2"
        changed "file $2"
        return 0
    fi
    ensure_mode "$2" "$3" "$4" "$5" file
}
ensure_text() {  # text, destination, mode
    local tmp
    tmp=$(mktemp)
    printf '%s\n' "$1" >"$tmp"
    local status=1
    ensure_file "$tmp" "$2" "$3" root root && status=0
    rm -f "$tmp"
    return "$status"
}

ensure_dir "$PREFIX" 755 root root
ensure_dir "$LIBEXEC" 755 root root
ensure_file "$src/provisioning/libexec/checkpoint-bt-recover" "$LIBEXEC/checkpoint-bt-recover" \
    755 root root || true
ensure_dir "$CONFIG_DIR" 750 root "$GROUP"
if [[ ! -e "$CONFIG_DIR/checkpoint.toml" ]]; then
    install -m 640 -o root -g "$GROUP" "$src/provisioning/checkpoint.toml" \
        "$CONFIG_DIR/checkpoint.toml"
    changed "configuration $CONFIG_DIR/checkpoint.toml (from the template)"
else
    # Its content is the unit's own (enrollment wrote it); who may read it is ours.
    ensure_mode "$CONFIG_DIR/checkpoint.toml" 640 root "$GROUP" configuration || true
fi
ensure_dir "$STATE_DIR" 2770 "$DAEMON_USER" "$GROUP"

units_changed=0
for unit in "$src"/systemd/checkpoint*.service "$src"/systemd/checkpoint*.timer; do
    ensure_file "$unit" "$UNIT_DIR/$(basename "$unit")" 644 root root && units_changed=1
done

# bluetoothd --experimental: the advertisement monitor API that passive scanning needs. The
# drop-in repeats the packaged ExecStart with the flag added, whatever path the release uses.
bluetoothd_changed=0
packaged=$(sed -n 's/^ExecStart=//p' /lib/systemd/system/bluetooth.service | head -n 1)
[[ -n "$packaged" ]] || die "no ExecStart in /lib/systemd/system/bluetooth.service"
[[ "$packaged" == *--experimental* ]] || packaged="$packaged --experimental"
ensure_text "# Installed by Checkpoint: passive scanning needs BlueZ's experimental interfaces.
[Service]
ExecStart=
ExecStart=$packaged" /etc/systemd/system/bluetooth.service.d/checkpoint.conf 644 &&
    bluetoothd_changed=1

# journald on an SD card: bounded, and never filling the card the visit log lives on.
journald_changed=0
ensure_text "# Installed by Checkpoint: the journal stays small on the SD card.
[Journal]
SystemMaxUse=64M
SystemKeepFree=256M
RuntimeMaxUse=16M
MaxRetentionSec=1month" /etc/systemd/journald.conf.d/checkpoint.conf 644 && journald_changed=1

# The GPIO chips for the group gpio (Raspberry Pi OS has such a rule already; Debian has not).
udev_changed=0
ensure_text '# Installed by Checkpoint: the daemon (group gpio) drives the LEDs, buzzer and sensor.
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"' \
    /etc/udev/rules.d/60-checkpoint-gpio.rules 644 && udev_changed=1

# 4. The virtual environment, holding exactly this checkout (a digest of its source says so).
venv_changed=0
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv --system-site-packages "$VENV"
    changed "virtual environment $VENV"
fi
digest=$(
    cd "$src"
    find pyproject.toml README.md appliance collector -type f ! -name '*.pyc' \
        ! -path '*/__pycache__/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
)
digest=${digest%% *}
if [[ "$(cat "$VENV/.checkpoint-source" 2>/dev/null)" != "$digest" ]]; then
    note "installing Checkpoint into $VENV (pip; this takes a minute)"
    build=$(mktemp -d)
    # Built from a copy, so pip leaves no build/ or .egg-info in the checkout.
    tar -C "$src" --exclude='__pycache__' --exclude='*.pyc' --exclude='*.egg-info' \
        -cf - pyproject.toml README.md appliance collector | tar -C "$build" -xf -
    "$VENV/bin/python" -m pip install --quiet --no-input --disable-pip-version-check \
        --no-cache-dir --no-warn-script-location "$build"
    rm -rf "$build"
    echo "$digest" >"$VENV/.checkpoint-source"
    version=$("$VENV/bin/checkpoint" --version 2>/dev/null || echo "checkpoint")
    changed "installed ${version} into $VENV"
    venv_changed=1
fi

# 5. Enable the units. `systemctl enable` works offline, in a chroot too.
enable=(checkpoint.service checkpoint-beacon.service checkpoint-enroll.service
    checkpoint-maintenance.timer)
((console)) && enable+=(checkpoint-console.service)
enabled_now=()
for unit in "${enable[@]}"; do
    if ! systemctl is-enabled --quiet "$unit" 2>/dev/null; then
        systemctl enable --quiet "$unit" || die "systemctl enable $unit failed"
        enabled_now+=("$unit")
        changed "enabled $unit"
    fi
done
if ((console)); then
    if systemctl is-enabled --quiet getty@tty1.service 2>/dev/null; then
        systemctl disable --quiet getty@tty1.service || die "systemctl disable getty@tty1 failed"
        changed "disabled getty@tty1.service (the console has tty1)"
    fi
elif systemctl is-enabled --quiet checkpoint-console.service 2>/dev/null; then
    # --no-console after a run with the console: tty1 goes back to its login prompt.
    systemctl disable --quiet checkpoint-console.service ||
        die "systemctl disable checkpoint-console failed"
    systemctl enable --quiet getty@tty1.service || die "systemctl enable getty@tty1 failed"
    changed "disabled checkpoint-console.service, enabled getty@tty1.service (--no-console)"
    if ((start)) && systemd_running; then
        systemctl stop checkpoint-console.service || true
        systemctl --no-block start getty@tty1.service || true
    fi
fi

# 6. Start what is new and restart what changed; a unit stopped on purpose stays stopped when
# nothing changed.
if ((start)) && systemd_running && ((changes)); then
    ((units_changed || bluetoothd_changed)) && systemctl daemon-reload
    ((journald_changed)) && systemctl restart systemd-journald.service
    ((udev_changed)) && udevadm control --reload && udevadm trigger --subsystem-match=gpio
    ((bluetoothd_changed)) && systemctl restart bluetooth.service
    running=(checkpoint.service checkpoint-beacon.service checkpoint-console.service)
    if ((units_changed || venv_changed)); then
        systemctl --no-block try-restart "${running[@]}" ||
            note "warning: could not restart ${running[*]}: see systemctl status"
    fi
    # A unit whose condition is not met yet (no province key before enrollment) is skipped;
    # the enrollment unit starts the daemon once it has enrolled.
    if ((${#enabled_now[@]})); then
        systemctl --no-block start "${enabled_now[@]}" ||
            note "warning: could not start ${enabled_now[*]}: see systemctl status"
    fi
    note "started what changed; \`checkpoint doctor\` checks the lot"
elif ((start)) && ((changes)) && ! systemd_running; then
    note "systemd is not running here: nothing started"
fi

if ((changes)); then
    note "done: $changes changes"
else
    note "nothing to change: Checkpoint is installed as this checkout describes"
fi
