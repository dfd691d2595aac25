"""The passthrough tap is one class in layers (service/passthrough/): the split must not cost
the per-frame path anything, so only `TapState` holds fields and a tap has no `__dict__`."""

from __future__ import annotations

from service.passthrough import FrameTap
from service.passthrough.state import TapState


def test_a_tap_has_slots_only() -> None:
    tap = FrameTap(None, None, masked=True)
    assert not hasattr(tap, "__dict__")


def test_only_the_state_layer_declares_fields() -> None:
    layers = [cls for cls in FrameTap.__mro__ if cls not in (TapState, object)]
    assert [cls.__name__ for cls in layers] == [
        "FrameTap",
        "Handover",
        "Relaying",
        "ReaderSide",
        "FastPaths",
        "Output",
        "HeaderChecks",
    ]
    assert {cls.__name__: cls.__dict__.get("__slots__") for cls in layers} == {
        cls.__name__: () for cls in layers
    }
    assert len(TapState.__slots__) == 27
