"""The CC mapper's total budget: many cc: entries slow down together instead of flooding the DAW."""

from __future__ import annotations

import dataclasses

from emobridge.mapping import ControlSpec
from emobridge.music.controls import BURST_SECONDS, TOTAL_RATE, ControlMapper
from emobridge.state import EmotionState


def spec(cc: int, channel: int = 0) -> ControlSpec:
    return ControlSpec(source="valence", cc=cc % 128, channel=channel, range=(-1.0, 1.0), out=(0, 127),
                       curve="linear", steps=4, rate=1000.0)


def swinging(t: float) -> EmotionState:
    """A valence that moves every update, so every entry always has a new value to send."""
    happy = EmotionState.fixed("happy", t)
    return dataclasses.replace(happy, valence=((t * 7.3) % 2.0) - 1.0)


def test_a_thousand_entries_share_the_total_rate_and_each_gets_its_turn():
    mapper = ControlMapper(tuple(spec(i, i // 128) for i in range(1000)))
    sent, seen = 0, set()
    for step in range(1000):  # 10 s of perception at 100 frames a second
        t = step * 0.01
        out = mapper.update(swinging(t), None, t)
        sent += len(out)
        seen.update((channel, cc) for channel, cc, _ in out)
    assert sent <= TOTAL_RATE * 10 + TOTAL_RATE * BURST_SECONDS
    assert sent >= TOTAL_RATE * 10 * 0.9, "the budget was not used"
    assert len(seen) == 1000, "some entries never had their turn"


def test_a_few_entries_are_not_held_back():
    mapper = ControlMapper(tuple(spec(i) for i in range(4)))
    sent = sum(len(mapper.update(swinging(step * 0.01), None, step * 0.01)) for step in range(100))
    assert sent == 400  # every entry, every update: far below the budget
