"""Adding an app format means adding one module: the registry finds it by itself."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from appliance.protocols import decoders
from appliance.protocols.registry import Classifier, load_decoders


def test_a_new_module_is_discovered_and_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "toy_app.py").write_text(
        textwrap.dedent(
            """
            from appliance.models import Detection
            from appliance.protocols.registry import Decoder

            def decode(adv, options):
                return Detection("toy-app") if 0xABCD in adv.uuid16 else None

            DECODER = Decoder(name="toy-app", priority=99, decode=decode, summary="a toy")
            """
        )
    )
    monkeypatch.setattr(decoders, "__path__", [*decoders.__path__, str(tmp_path)])
    monkeypatch.delitem(sys.modules, "appliance.protocols.decoders.toy_app", raising=False)
    classifier = Classifier()
    assert classifier.protocols[-1] == "toy-app"
    detection = classifier.classify_bytes(bytes([0x03, 0x03, 0xCD, 0xAB]))
    assert detection is not None and detection.protocol == "toy-app"


def test_a_module_without_decoder_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken_app.py").write_text("X = 1\n")
    monkeypatch.setattr(decoders, "__path__", [*decoders.__path__, str(tmp_path)])
    with pytest.raises(TypeError, match="defines no DECODER"):
        load_decoders()
