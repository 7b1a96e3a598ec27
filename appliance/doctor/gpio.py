"""Doctor's GPIO checks: the pins the configuration claims, the chip, the library."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import stat
import sys
from collections import defaultdict
from pathlib import Path

from appliance.config import Config, GpioSection
from appliance.doctor.base import FAIL, PASS, WARN, Account, Check, described, group_name

BCM_PINS = range(28)  # GPIO0..GPIO27: the 40-pin header of every Pi
# gpiozero's lgpio factory opens gpiochip4 on a Pi 5 (older kernels' RP1), gpiochip0 otherwise.
GPIO_CHIPS = ("gpiochip4", "gpiochip0")
# <linux/gpio.h>: _IOR(0xB4, 0x01, struct gpiochip_info {char name[32], label[32]; u32 lines})
GPIO_GET_CHIPINFO_IOCTL = 0x8044B401
GPIOCHIP_INFO_SIZE = 68


def pin_roles(gpio: GpioSection) -> list[tuple[str, int]]:
    """The pins the board will claim with this configuration (as appliance.gpio.board does)."""
    roles = [("red LED", gpio.red_pin), ("green LED", gpio.green_pin)]
    if gpio.led == "rgb":
        roles.append(("blue LED", gpio.blue_pin))
    roles.append(("buzzer", gpio.buzzer_pin))
    if gpio.sensor in ("pir", "beam", "two-beams"):
        roles.append(("presence sensor" if gpio.sensor == "pir" else "outer beam", gpio.sensor_pin))
    if gpio.sensor == "two-beams":
        roles.append(("inner beam", gpio.inner_beam_pin))
    if gpio.button_pin is not None:
        roles.append(("button", gpio.button_pin))
    return roles


def _chip_info(device: Path) -> tuple[str, int] | None:
    """(label, lines) from the kernel, for a real GPIO character device; None otherwise."""
    try:
        if not stat.S_ISCHR(device.stat().st_mode):
            return None
        fd = os.open(device, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        info = fcntl.ioctl(fd, GPIO_GET_CHIPINFO_IOCTL, bytes(GPIOCHIP_INFO_SIZE))
    except OSError:
        return None
    finally:
        os.close(fd)
    label = info[32:64].split(b"\0", 1)[0].decode("ascii", "replace")
    return label, int.from_bytes(info[64:68], sys.byteorder)


def _sysfs_lines(chip: str, sys_dir: Path) -> int | None:
    """A chip's line count from sysfs: the legacy class directory names its character device."""
    try:
        for entry in (sys_dir / "class" / "gpio").glob("gpiochip*"):
            if (entry / "device" / chip).exists():
                return int((entry / "ngpio").read_text().strip())
    except (OSError, ValueError):
        return None
    return None


def gpio_checks(
    config: Config, account: Account, dev_dir: Path = Path("/dev"), sys_dir: Path = Path("/sys")
) -> list[Check]:
    """The pins, the chip they are on and the library that drives them; one check each."""
    gpio = config.gpio
    if not gpio.enabled:
        return [_disabled_check(config)]
    roles = pin_roles(gpio)
    checks = [_pins_check(roles), _chip_check(roles, account, dev_dir, sys_dir)]
    library = _library_check()
    return checks if library is None else [*checks, library]


def _disabled_check(config: Config) -> Check:
    # Only a unit that listens to a real radio is a door unit that should have its lights.
    status = WARN if config.ble.source == "bluez" else PASS
    return Check(
        status,
        "GPIO",
        "off ([gpio] enabled = false): no lights, buzzer or sensor",
        "set [gpio] enabled = true on a door unit" if status == WARN else None,
    )


def _pins_check(roles: list[tuple[str, int]]) -> Check:
    """Every role on a header pin of its own."""
    by_pin: dict[int, list[str]] = defaultdict(list)
    for role, pin in roles:
        by_pin[pin].append(role)
    bad = [f"{role} on {pin}" for role, pin in roles if pin not in BCM_PINS]
    if bad:
        return Check(
            FAIL,
            "GPIO pins",
            f"not BCM GPIO0-27: {', '.join(bad)}",
            "use BCM numbers (GPIO17, not physical pin 11) in [gpio]",
        )
    shared = [
        f"GPIO{pin}: {' and '.join(names)}" for pin, names in by_pin.items() if len(names) > 1
    ]
    if shared:
        return Check(
            FAIL,
            "GPIO pins",
            f"one pin, two roles: {'; '.join(shared)}",
            "give each role its own pin in [gpio]",
        )
    used = ", ".join(f"{role} GPIO{pin}" for role, pin in roles)
    return Check(PASS, "GPIO pins", used)


def _chip_check(
    roles: list[tuple[str, int]], account: Account, dev_dir: Path, sys_dir: Path
) -> Check:
    """The GPIO character device gpiozero will open: there, openable, with lines enough."""
    chip = next((c for c in GPIO_CHIPS if os.path.lexists(dev_dir / c)), None)
    if chip is None:
        found = sorted(p.name for p in dev_dir.glob("gpiochip*"))
        return Check(
            FAIL,
            "GPIO chip",
            f"no {dev_dir / 'gpiochip0'}" + (f" (only {', '.join(found)})" if found else ""),
            "is this a Raspberry Pi? `ls -l /dev/gpiochip*`; with no board "
            "attached set [gpio] enabled = false",
        )
    device = dev_dir / chip
    try:
        st = device.stat()
    except OSError as exc:
        return Check(
            FAIL, "GPIO chip", f"{device}: {exc.strerror}", f"`ls -l {device}`: a dangling link?"
        )
    where = described(device, st)
    if not account.can(st, read=True, write=True):
        return Check(
            FAIL,
            "GPIO chip",
            f"{where}: {account.name} cannot open it",
            f"usermod -aG {group_name(st.st_gid)} {account.name}, then restart the daemon",
        )
    info = _chip_info(device)
    lines = info[1] if info else _sysfs_lines(chip, sys_dir)
    top = max((pin for _, pin in roles), default=0)
    if lines is not None and top >= lines:
        return Check(
            FAIL,
            "GPIO chip",
            f"{where} has {lines} lines, GPIO{top} is not one of them",
            "check the pins in [gpio]",
        )
    label = f" {info[0]}" if info and info[0] else ""
    size = f", {lines} lines" if lines is not None else ", line count unknown"
    return Check(PASS, "GPIO chip", f"{where}{label}{size}, usable by {account.name}")


def _library_check() -> Check | None:
    """A failing check when gpiozero's Pi backend is missing; None when it is there."""
    if importlib.util.find_spec("lgpio") is not None:
        return None
    return Check(
        FAIL,
        "GPIO library",
        "lgpio is not installed (gpiozero's Pi backend)",
        "install it into the venv: `pip install lgpio` (needs "
        "liblgpio-dev) or `apt install python3-lgpio`",
    )
