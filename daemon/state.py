"""The emotion the music follows: smoothed probabilities, a label, valence/arousal, presence.

Shared by perception (which produces it), the music (which reads it) and the outputs (which
send it); it imports nothing of the project but the labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .labels import EMOTIONS, VALENCE_AROUSAL

_VA = np.array([VALENCE_AROUSAL[name] for name in EMOTIONS], dtype=np.float64)


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
    presence: float = 1.0  # 0..1: the music's level under the no-face policy (fade_out lowers it)
    presence_rate: float = 0.0  # change of presence per second while a fade is under way (0 when steady)

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

    def presence_at(self, now: float) -> float:
        """The music's level at *now*, following a fade on from this state's time.

        The player asks at every note; frames may come late (a busy CPU), and the fade must still
        end on time rather than wait for the next frame.
        """
        elapsed = max(0.0, now - self.time)
        return max(0.0, min(1.0, self.presence + self.presence_rate * elapsed))


def valence_arousal(probs: np.ndarray) -> tuple[float, float]:
    """Probability-weighted mean of the classes' pleasure/arousal coordinates."""
    total = float(np.sum(probs))
    if total <= 0:
        return 0.0, 0.0
    valence, arousal = (np.asarray(probs, dtype=np.float64) @ _VA) / total
    return float(valence), float(arousal)


def state_from_probs(probs: np.ndarray, label_index: int, face: bool, time: float,
                     presence: float = 1.0, presence_rate: float = 0.0) -> EmotionState:
    valence, arousal = valence_arousal(probs)
    return EmotionState(tuple(float(p) for p in probs), EMOTIONS[label_index], float(probs[label_index]),
                        valence, arousal, face, time, presence, presence_rate)


def average_state(states: list[EmotionState], time: float) -> EmotionState:
    """An audience's emotion: the mean of several faces' probabilities, labelled by the leader."""
    probs = np.mean([s.probs for s in states], axis=0)
    loudest = max(states, key=lambda s: s.presence)
    return state_from_probs(probs, int(np.argmax(probs)), face=any(s.face for s in states), time=time,
                            presence=loudest.presence, presence_rate=loudest.presence_rate)
