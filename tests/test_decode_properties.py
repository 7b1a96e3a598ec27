"""Property tests: no byte string can make the parser or the decoders raise."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.protocols import frames
from appliance.protocols.adstructs import parse
from appliance.protocols.others import describe
from appliance.protocols.registry import Classifier, DecodeOptions

classifier = Classifier()

VALID_SHAPES = [
    frames.bluezone_android(bytes(range(12))),
    frames.bluezone_legacy("Ab12Cd"),
    frames.bluezone_ios_foreground(),
    frames.bluezone_ios_background(),
    frames.bluezone_beacon(),
    frames.gaen(bytes(range(16))),
    frames.bluetrace(),
    frames.apple_nearby_info(),
    frames.microsoft_cdp(),
    frames.ibeacon("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0", 1, 2),
    frames.bluezone_android(bytes(12)) + frames.local_name("scan response"),
]


def check(data: bytes, options: DecodeOptions | None = None) -> None:
    adv = parse(data)
    detection = (Classifier(options) if options else classifier).classify(adv)
    describe(adv)
    if detection is not None:
        assert detection.protocol in classifier.protocols
        assert detection.raw_id is None or isinstance(detection.raw_id, bytes)


@settings(max_examples=3000)
@given(st.binary(max_size=80))
def test_random_bytes_never_raise(data: bytes) -> None:
    check(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(VALID_SHAPES)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "length"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "truncate":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[at]
        else:  # corrupt a length byte to anything, including past the end
            data[at] = draw(st.sampled_from([0, 1, 2, 0x1F, 0xFF]))
    return bytes(data)


@settings(max_examples=3000)
@given(mutated())
def test_mutations_of_every_valid_shape_never_raise(data: bytes) -> None:
    check(data)


@settings(max_examples=300)
@given(st.binary(max_size=40), st.integers(0, 15), st.integers(1, 255))
def test_any_overflow_setting_never_raises(data: bytes, byte: int, mask: int) -> None:
    check(frames.apple_overflow(bytes(16)) + data, DecodeOptions(byte, mask))
