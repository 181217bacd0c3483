"""Steady emotion over time: smoothed probabilities, a label with hysteresis, valence/arousal.

Attack/release smoothing (fast towards a rising class, slower away from it) keeps the
stream responsive to a real change while single noisy frames barely move it; the label
changes only when a new class leads by a margin, which stops flicker between close
classes when the face holds still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import EMOTIONS
from ..state import EmotionState, state_from_probs
from ..labels import NO_FACE_POLICIES

NEUTRAL = EMOTIONS.index("neutral")
PRESENCE_RETURN = 0.5  # seconds for the music to come back to full level once a face is seen again

# The allowed range of each number in a SmoothingConfig: seconds, but hysteresis is a probability
# margin. The mapping's smoothing: section declares its keys with these same limits, so a mapping
# file and a SmoothingConfig built in code refuse the same values.
SMOOTHING_LIMITS: dict[str, tuple[float, float]] = {
    "attack": (0.0, 10.0), "release": (0.0, 10.0), "hysteresis": (0.0, 0.5),
    "confirm": (0.0, 5.0), "min_hold": (0.0, 30.0), "no_face_fade": (0.0, 60.0),
}


@dataclass(frozen=True)
class SmoothingConfig:
    """How the emotion stream is steadied; the ``smoothing:`` section of a mapping file.

    Probabilities move towards each frame's with attack/release time constants (fast
    towards a rising class, slower away from a falling one), so one odd frame barely moves
    them. The reported label changes only when a new class leads the current one by
    ``hysteresis`` for ``confirm`` seconds running, and never sooner than ``min_hold``
    seconds after the last change: that keeps a held face from flickering between two
    close classes, while a real change still comes through in a few tenths of a second.
    """

    attack: float = 0.15    # seconds for a rising probability to cover 63% of the way
    release: float = 0.25   # seconds for a falling probability to do the same
    hysteresis: float = 0.08  # a new label must lead the current one by this much...
    confirm: float = 0.07   # ...for this many seconds running
    min_hold: float = 0.5   # seconds a label is kept at least before the next change
    no_face_fade: float = 3.0  # seconds the no-face policy takes (to neutral, or to silence)
    no_face: str = "neutral"   # when the face is lost: "neutral" (fade to it), "hold" (keep the last
                               # emotion) or "fade_out" (keep it, and fade the music out)

    def __post_init__(self) -> None:
        if self.no_face not in NO_FACE_POLICIES:
            raise ValueError(f"smoothing no_face must be one of {', '.join(NO_FACE_POLICIES)}, got {self.no_face!r}")
        for name, (low, high) in SMOOTHING_LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"smoothing {name} must be {low:g} to {high:g}, got {value}")


class EmotionSmoother:
    """Turns per-frame probabilities into a steady :class:`EmotionState` (time-constant based, so frame-rate independent)."""

    def __init__(self, config: SmoothingConfig | None = None):
        self.config = config or SmoothingConfig()
        self.reset()

    def reset(self) -> None:
        """Back to a neutral face, as at start."""
        self.probs = np.zeros(len(EMOTIONS))
        self.probs[NEUTRAL] = 1.0
        self.label = NEUTRAL
        self.last_time: float | None = None
        self._challenger: int | None = None  # the class leading the label by the margin, and since when
        self._challenged_at = 0.0
        self._changed_at = -np.inf  # when the label last changed
        self.presence = 1.0

    def update(self, probs: np.ndarray | None, now: float) -> EmotionState:
        """Feed one frame's probabilities (``None`` when no face was found) taken at *now* seconds."""
        dt = 0.0 if self.last_time is None else max(0.0, now - self.last_time)
        self.last_time = now
        if probs is None:
            rate = self._no_face(dt)
        else:
            target = np.asarray(probs, dtype=np.float64)
            self._approach(target, dt, self.config.attack, self.config.release)
            self.presence = min(1.0, self.presence + dt / PRESENCE_RETURN)
            rate = 1.0 / PRESENCE_RETURN if self.presence < 1.0 else 0.0
        self._update_label(now)
        return state_from_probs(self.probs, self.label, face=probs is not None, time=now, presence=self.presence,
                                presence_rate=rate)

    def _no_face(self, dt: float) -> float:
        """The no-face policy: drift to neutral, or hold the emotion (and with fade_out, lower the music).

        Returns how fast the music's level is changing (per second), for :meth:`EmotionState.presence_at`.
        """
        fade = self.config.no_face_fade
        if self.config.no_face == "neutral":
            target = np.zeros(len(EMOTIONS))
            target[NEUTRAL] = 1.0
            self._approach(target, dt, fade, fade)
        elif self.config.no_face == "fade_out":
            self.presence = max(0.0, self.presence - dt / fade) if fade > 0 else 0.0
            return -1.0 / fade if self.presence > 0.0 else 0.0
        return 0.0

    def _approach(self, target: np.ndarray, dt: float, attack: float, release: float) -> None:
        rising = target > self.probs
        tau = np.where(rising, attack, release)
        alpha = 1.0 - np.exp(-dt / np.maximum(tau, 1e-6)) if dt > 0 else np.where(tau <= 1e-6, 1.0, 0.0)
        self.probs = self.probs + alpha * (target - self.probs)
        self.probs /= max(self.probs.sum(), 1e-9)

    def _update_label(self, now: float) -> None:
        leader = int(np.argmax(self.probs))
        if leader == self.label or self.probs[leader] - self.probs[self.label] <= self.config.hysteresis:
            self._challenger = None
            return
        if self._challenger != leader:
            self._challenger, self._challenged_at = leader, now
        if now - self._challenged_at >= self.config.confirm - 1e-9 and \
                now - self._changed_at >= self.config.min_hold - 1e-9:
            self.label, self._changed_at, self._challenger = leader, now, None
