"""The seven FER2013 emotion classes and their place on the valence/arousal plane.

Everything downstream of the classifier speaks in this order (the order of the OSC
``/emobridge/probs`` message); a model whose metadata lists the classes in another
order is re-ordered to this one when it is loaded.
"""

from __future__ import annotations

from .errors import UserError

EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Pleasure/arousal coordinates of the emotion terms (Russell & Mehrabian, 1977),
# used to turn the seven probabilities into one continuous valence/arousal point.
VALENCE_AROUSAL: dict[str, tuple[float, float]] = {
    "angry": (-0.51, 0.59),
    "disgust": (-0.60, 0.35),
    "fear": (-0.64, 0.60),
    "happy": (0.81, 0.51),
    "sad": (-0.63, -0.27),
    "surprise": (0.40, 0.67),
    "neutral": (0.0, 0.0),
}

# Which faces the music follows (faces.follow in a mapping, --faces on the command line).
FOLLOW_MODES: tuple[str, ...] = ("largest", "average", "each")

# What the music does while no face is seen (smoothing.no_face).
NO_FACE_POLICIES: tuple[str, ...] = ("neutral", "hold", "fade_out")

# The original fer2013.csv numbers its classes in this order.
FER_CSV_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def emotion_index(name: str) -> int:
    """Index of an emotion in :data:`EMOTIONS`; a clear error for anything else."""
    try:
        return EMOTIONS.index(name)
    except ValueError:
        raise UserError(f"unknown emotion {name!r}: use one of {', '.join(EMOTIONS)}") from None
