"""Continuous controls: the mapping's ``cc:`` entries turned into MIDI control changes.

Each entry reads one source (valence, arousal, confidence, a class probability, the tempo or
the density), maps it from its ``range`` through a ``curve`` onto the ``out`` values and sends
it as controller ``cc`` on ``channel``. A value goes out only when it differs from the last one
sent on that entry, and no entry sends more often than its ``rate`` (messages per second); a
change held back by the rate limit goes out at the first update after the limit allows, with
the value of that moment. Time is passed in, so this is pure and testable.
"""

from __future__ import annotations

import math

from ..labels import EMOTIONS
from ..mapping import ControlSpec, Mapping
from ..state import EmotionState
from .params import MusicParams

_EXP_K = 3.0  # steepness of the exponential curve: halfway along the source gives ~18% of the way out


def source_value(source: str, state: EmotionState, params: MusicParams | None) -> float:
    """The current value of a control source (tempo in BPM, density 0..1, the others as the state gives them)."""
    if source == "valence":
        return state.valence
    if source == "arousal":
        return state.arousal
    if source == "confidence":
        return state.confidence
    if source in EMOTIONS:
        return state.prob(source)
    if params is None:
        raise ValueError(f"control source {source!r} needs the music parameters")
    if source == "tempo":
        return params.tempo
    if source == "density":
        return params.density
    raise ValueError(f"unknown control source {source!r}")


def shape(fraction: float, curve: str, steps: int) -> float:
    """Map 0..1 (clamped) through a curve onto 0..1.

    linear: unchanged; exponential: slow start, steep end, ``(e^(3x) - 1) / (e^3 - 1)``, suited to
    cutoffs and volumes; step: *steps* equal levels, 0 and 1 included.
    """
    x = max(0.0, min(1.0, fraction))
    if curve == "linear":
        return x
    if curve == "exponential":
        return (math.exp(_EXP_K * x) - 1) / (math.exp(_EXP_K) - 1)
    if curve == "step":
        return min(steps - 1, math.floor(x * steps)) / (steps - 1)
    raise ValueError(f"unknown curve {curve!r}")


def control_value(spec: ControlSpec, value: float) -> int:
    """The CC value (0-127) an entry sends for a source *value*."""
    low, high = spec.range
    y = shape((value - low) / (high - low), spec.curve, spec.steps)
    return max(0, min(127, round(spec.out[0] + (spec.out[1] - spec.out[0]) * y)))


# CC messages per second from all entries together. A DIN cable carries about 1,000 three-byte messages a
# second and a DAW's MIDI input queue not much more; half of that leaves the notes their share.
TOTAL_RATE = 500.0
BURST_SECONDS = 0.1  # the budget a quiet spell saves up: 50 messages at once at most


class ControlMapper:
    """Per-entry last value and send time; :meth:`update` says what to send now.

    Besides each entry's own ``rate``, all entries together send at most *total_rate* messages a
    second: entries beyond the budget keep their change for the next update, taken in turn, so a
    mapping with hundreds of entries slows its CCs down instead of flooding the DAW.
    """

    def __init__(self, controls: tuple[ControlSpec, ...] | Mapping, total_rate: float = TOTAL_RATE):
        self._specs: tuple[ControlSpec, ...] = ()
        self._sent: list[int | None] = []
        self._when: list[float | None] = []
        self.total_rate = total_rate
        self._budget = total_rate * BURST_SECONDS
        self._budget_at: float | None = None
        self._next = 0  # the entry the next update looks at first, so every entry gets its turn
        self.set_controls(controls)

    @property
    def controls(self) -> tuple[ControlSpec, ...]:
        return self._specs

    def set_controls(self, controls: tuple[ControlSpec, ...] | Mapping) -> None:
        """New entries (a hot-reloaded mapping): entries that stay the same keep their state, others start fresh."""
        specs = controls.controls if isinstance(controls, Mapping) else tuple(controls)
        kept = {spec: (sent, when) for spec, sent, when in zip(self._specs, self._sent, self._when)}
        self._specs = specs
        self._sent = [kept.get(spec, (None, None))[0] for spec in specs]
        self._when = [kept.get(spec, (None, None))[1] for spec in specs]

    def update(self, state: EmotionState, params: MusicParams, now: float) -> list[tuple[int, int, int]]:
        """``(channel 0-15, cc, value)`` for every entry whose value changed and whose rate allows it at *now* (s)."""
        self._refill(now)
        messages = []
        count = len(self._specs)
        for turn in range(count):
            if self._budget < 1.0:
                self._next = (self._next + turn) % count
                return messages
            index = (self._next + turn) % count
            spec = self._specs[index]
            when = self._when[index]
            if when is not None and now - when < 1.0 / spec.rate - 1e-9:
                continue
            value = control_value(spec, source_value(spec.source, state, params))
            if value != self._sent[index]:
                messages.append((spec.channel, spec.cc, value))
                self._sent[index], self._when[index] = value, now
                self._budget -= 1.0
        return messages

    def _refill(self, now: float) -> None:
        cap = self.total_rate * BURST_SECONDS
        if self._budget_at is not None:
            self._budget = min(cap, self._budget + (now - self._budget_at) * self.total_rate)
        self._budget_at = now

    def reset(self) -> None:
        """Forget what was sent (after a panic or a port reconnect), so every value goes out again."""
        self._sent = [None] * len(self._specs)
        self._when = [None] * len(self._specs)
