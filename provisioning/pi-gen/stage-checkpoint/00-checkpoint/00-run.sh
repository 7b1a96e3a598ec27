#!/usr/bin/env bash
# pi-gen sub-stage: bake Checkpoint into the image with the same installer IT staff run on a
# single card (provisioning/install.sh --root), so an image and a hand install cannot drift.
# pi-gen runs this on the build host with ROOTFS_DIR set; the installer chroots into it (ARM
# binaries run through qemu-user-static, as for pi-gen's own stages) and starts nothing.
#
# The per-device part (collector, one-time code, hostname) is not in the image: it comes on the
# boot partition as checkpoint-provision.toml (`checkpoint provision bundle`) and is consumed on
# first boot by checkpoint-enroll.service.
set -euo pipefail
: "${ROOTFS_DIR:?pi-gen sets ROOTFS_DIR}"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checkout=${CHECKPOINT_SOURCE:-$(cd "$here/../../../.." && pwd)}
[ -x "$checkout/provisioning/install.sh" ] ||
    { echo "00-run.sh: no Checkpoint checkout at $checkout (set CHECKPOINT_SOURCE)" >&2; exit 1; }
"$checkout/provisioning/install.sh" --root "$ROOTFS_DIR"
