"""Steady emotion over time: smoothed probabilities, a label with hysteresis, valence/arousal.

Attack/release smoothing (fast towards a rising class, slower away from it) keeps the
stream responsive to a real change while single noisy frames barely move it; the label
changes only when a new class leads by a margin, which stops flicker between close
classes when the face holds still.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import EMOTIONS, VALENCE_AROUSAL

_VA = np.array([VALENCE_AROUSAL[name] for name in EMOTIONS], dtype=np.float64)
NEUTRAL = EMOTIONS.index("neutral")


@dataclass(frozen=True)
class EmotionState:
    """The smoothed emotion the music follows (probabilities in :data:`EMOTIONS` order)."""

    probs: tuple[float, ...]
    label: str
    confidence: float
    valence: float
    arousal: float
    face: bool
    time: float

    @classmethod
    def fixed(cls, emotion: str, time: float = 0.0) -> "EmotionState":
        """A state that is entirely one emotion (for ``simulate`` and forced emotions)."""
        probs = np.zeros(len(EMOTIONS))
        probs[EMOTIONS.index(emotion)] = 1.0
        return state_from_probs(probs, EMOTIONS.index(emotion), face=True, time=time)

    @classmethod
    def neutral(cls, time: float = 0.0) -> "EmotionState":
        return cls.fixed("neutral", time)

    def prob(self, emotion: str) -> float:
        return self.probs[EMOTIONS.index(emotion)]


def valence_arousal(probs: np.ndarray) -> tuple[float, float]:
    """Probability-weighted mean of the classes' pleasure/arousal coordinates."""
    total = float(np.sum(probs))
    if total <= 0:
        return 0.0, 0.0
    valence, arousal = (np.asarray(probs, dtype=np.float64) @ _VA) / total
    return float(valence), float(arousal)


def state_from_probs(probs: np.ndarray, label_index: int, face: bool, time: float) -> EmotionState:
    valence, arousal = valence_arousal(probs)
    return EmotionState(tuple(float(p) for p in probs), EMOTIONS[label_index], float(probs[label_index]),
                        valence, arousal, face, time)


@dataclass
class SmoothingConfig:
    attack: float = 0.15    # seconds for a rising probability to cover 63% of the way
    release: float = 0.35   # seconds for a falling probability to do the same
    hysteresis: float = 0.10  # a new label must lead the current one by this much
    no_face_fade: float = 3.0  # seconds to fade to neutral when the face is lost


class EmotionSmoother:
    """Turns per-frame probabilities into a steady :class:`EmotionState` (time-constant based, so frame-rate independent)."""

    def __init__(self, config: SmoothingConfig | None = None):
        self.config = config or SmoothingConfig()
        self.probs = np.zeros(len(EMOTIONS))
        self.probs[NEUTRAL] = 1.0
        self.label = NEUTRAL
        self.last_time: float | None = None

    def update(self, probs: np.ndarray | None, now: float) -> EmotionState:
        """Feed one frame's probabilities (``None`` when no face was found) taken at *now* seconds."""
        dt = 0.0 if self.last_time is None else max(0.0, now - self.last_time)
        self.last_time = now
        if probs is None:
            target = np.zeros(len(EMOTIONS))
            target[NEUTRAL] = 1.0
            self._approach(target, dt, self.config.no_face_fade, self.config.no_face_fade)
        else:
            target = np.asarray(probs, dtype=np.float64)
            self._approach(target, dt, self.config.attack, self.config.release)
        self._update_label()
        return state_from_probs(self.probs, self.label, face=probs is not None, time=now)

    def _approach(self, target: np.ndarray, dt: float, attack: float, release: float) -> None:
        rising = target > self.probs
        tau = np.where(rising, attack, release)
        alpha = 1.0 - np.exp(-dt / np.maximum(tau, 1e-6)) if dt > 0 else np.where(tau <= 1e-6, 1.0, 0.0)
        self.probs = self.probs + alpha * (target - self.probs)
        self.probs /= max(self.probs.sum(), 1e-9)

    def _update_label(self) -> None:
        leader = int(np.argmax(self.probs))
        if leader != self.label and self.probs[leader] - self.probs[self.label] > self.config.hysteresis:
            self.label = leader

