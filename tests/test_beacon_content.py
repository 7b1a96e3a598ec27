"""The beacon's content: the checkpoint's own Bluezone ID, derived as the app does, rotating at
UTC quarter-hours (time injected)."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from appliance.ble.beacon import BeaconKey, content_at, create_beacon_key, load_beacon_key
from appliance.errors import ConfigError
from appliance.protocols import frames
from appliance.protocols.registry import Classifier

KEY = BeaconKey(bytes(range(32)), date(2020, 8, 20))


def test_id_is_the_apps_derivation_from_the_base_key() -> None:
    # docs/protocols.md §1.5's worked example: base key 00..1f, day 0 slot 0 and 1, day 1 slot 0.
    assert KEY.id_at(datetime(2020, 8, 20, 0, 5, tzinfo=UTC)).hex().upper() == (
        "130CEA6472130C185D8643DF"
    )
    assert KEY.id_at(datetime(2020, 8, 20, 0, 15, tzinfo=UTC)).hex().upper() == (
        "893DAE342437130CE5E23837"
    )
    assert KEY.id_at(datetime(2020, 8, 21, 0, 0, tzinfo=UTC)).hex().upper() == (
        "970E23C0E19DE93F8CC4057B"
    )


def test_content_changes_exactly_at_the_quarter_hour() -> None:
    before = content_at(KEY, datetime(2020, 8, 20, 2, 14, 59, tzinfo=UTC))
    same = content_at(KEY, datetime(2020, 8, 20, 2, 0, 0, tzinfo=UTC))
    after = content_at(KEY, datetime(2020, 8, 20, 2, 15, 0, tzinfo=UTC))
    assert before == same and before != after
    assert after.service_uuids == ("00004e56-0000-1000-8000-00805f9b34fb",)
    assert after.manufacturer[0] == 0x22B5 and len(after.manufacturer[1]) == 12


def test_the_beacon_decodes_as_a_bluezone_phone() -> None:
    content = content_at(KEY, datetime(2020, 8, 20, 9, 0, tzinfo=UTC))
    detection = Classifier().classify_bytes(frames.bluezone_android(content.manufacturer[1]))
    assert detection is not None and detection.protocol == "bluezone"


def test_ibeacon_format() -> None:
    content = content_at(None, datetime.now(UTC), "ibeacon",
                         ("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", 7, 9, -59))  # fmt: skip
    company, payload = content.manufacturer
    assert (
        company == 0x004C and payload[:2] == b"\x02\x15" and payload[18:22] == b"\x00\x07\x00\x09"
    )


def test_key_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "beacon.key"
    made = create_beacon_key(path, date(2021, 1, 2))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_beacon_key(path) == made
    with pytest.raises(ConfigError, match="already exists"):
        create_beacon_key(path)
    path.write_text("{}")
    with pytest.raises(ConfigError, match="unreadable"):
        load_beacon_key(path)
    with pytest.raises(ConfigError, match="made at enrollment"):
        load_beacon_key(tmp_path / "absent.key")
