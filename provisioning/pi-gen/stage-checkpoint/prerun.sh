#!/usr/bin/env bash
# pi-gen: this stage starts from the previous stage's root filesystem (Raspberry Pi OS Lite).
set -euo pipefail
if [ ! -d "${ROOTFS_DIR}" ]; then
    copy_previous
fi
