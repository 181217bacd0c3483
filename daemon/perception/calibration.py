"""Resting-face calibration: a small per-performer correction of the classifier's bias.

A performer's calm face often reads as sad, angry or fear to a model trained on FER2013 (light,
glasses, age, gaze). ``emobridge calibrate`` records a few seconds of the resting face and fits a
:class:`Profile`: one offset per class added to the model's log-probabilities (a prior shift),

    p'(c) ∝ p(c) · exp(offset[c])

fitted so that the resting face's mean corrected probabilities come near :data:`RESTING_TARGET`
(mostly neutral). Neutral can only be raised and the others only lowered, each by at most a
factor of 3 (:data:`MAX_OFFSET`), so a clear expression (a smile at 0.8) still wins over
neutral: the profile evens out a bias, it cannot erase a real expression.

The profile is a JSON file, versioned, naming the model it was fitted for (the SHA-256 of the
model file): a profile of another model is refused with a one-line :class:`ProfileError`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ProfileError
from ..labels import EMOTIONS

FORMAT = "emobridge-profile"
VERSION = 1
MAX_OFFSET = math.log(3.0)  # neutral is raised at most 3x, each other class lowered at most 3x
NEUTRAL_TARGET = 0.7        # the resting face's mean neutral probability after calibration
# What the resting face should read on average once corrected: mostly neutral, the rest spread evenly.
RESTING_TARGET = np.array([NEUTRAL_TARGET if name == "neutral" else (1 - NEUTRAL_TARGET) / (len(EMOTIONS) - 1)
                           for name in EMOTIONS])
MIN_FRAMES = 5               # resting-face readings needed to fit a profile
FIT_ROUNDS = 50
MAX_FILE = 64 * 1024         # bytes: a profile is a few hundred


def model_identity(path: str | Path) -> str:
    """The SHA-256 of a model file: what a profile is tied to."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class Profile:
    """Per-class log-probability offsets (in :data:`EMOTIONS` order) for one performer and one model."""

    offsets: tuple[float, ...]
    model: str                      # SHA-256 of the model file it was fitted for
    frames: int = 0                 # resting-face readings it was fitted on
    neutral_before: float = 0.0     # share of those readings whose top class was neutral, uncorrected
    neutral_after: float = 0.0      # the same, corrected
    source: str = ""                # what was recorded (camera, file, folder)
    extra: dict[str, str] = field(default_factory=dict)

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Corrected probabilities (rows of N×7, or one row of 7), each row summing to 1."""
        return correct(probs, np.asarray(self.offsets))

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "model_sha256": self.model,
                "offsets": {name: round(float(v), 6) for name, v in zip(EMOTIONS, self.offsets)},
                "frames": self.frames, "neutral_before": round(self.neutral_before, 4),
                "neutral_after": round(self.neutral_after, 4), "source": self.source, **self.extra}

    def save(self, path: str | Path) -> None:
        try:
            Path(path).write_text(json.dumps(self.to_json(), indent=2) + "\n")
        except OSError as error:
            raise ProfileError(f"cannot write profile {path}: {error.strerror or error}") from None


def correct(probs: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """p · exp(offsets), renormalised per row."""
    weighted = np.asarray(probs, dtype=np.float64) * np.exp(offsets)
    return (weighted / weighted.sum(axis=-1, keepdims=True)).astype(np.float32)


def fit_profile(probs: np.ndarray, model: str, source: str = "") -> Profile:
    """The profile that makes these resting-face readings (N×7, EMOTIONS order) read as neutral.

    A few rounds of prior-shift estimation: each round moves the offsets by log(target / mean of
    the corrected readings). Only towards neutral: neutral may be raised (0 to +MAX_OFFSET) and
    the other classes lowered (0 to -MAX_OFFSET), never the reverse, so a class the resting face
    rarely shows (a smile, disgust) is never made easier to read than the model makes it.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(EMOTIONS) or len(probs) < MIN_FRAMES:
        raise ProfileError(f"calibration needs at least {MIN_FRAMES} frames with a face, got {len(probs)}: "
                           "record longer, face the camera, or light the face")
    neutral = EMOTIONS.index("neutral")
    raise_ = np.arange(len(EMOTIONS)) == neutral
    offsets = np.zeros(len(EMOTIONS))
    for _ in range(FIT_ROUNDS):
        mean = correct(probs, offsets).mean(axis=0).astype(np.float64)
        offsets = offsets + np.log(RESTING_TARGET / np.maximum(mean, 1e-9))
        offsets = np.where(raise_, np.clip(offsets, 0.0, MAX_OFFSET), np.clip(offsets, -MAX_OFFSET, 0.0))
    before = float(np.mean(probs.argmax(axis=1) == neutral))
    after = float(np.mean(correct(probs, offsets).argmax(axis=1) == neutral))
    return Profile(tuple(float(v) for v in offsets), model, len(probs), before, after, source)


def load_profile(path: str | Path, model: str | None = None) -> Profile:
    """Read a profile; *model*: the SHA-256 of the model in use, which the profile must name.

    Every problem is one :class:`ProfileError` line naming the file and the fix.
    """
    path = Path(path)
    fix = "run 'emobridge calibrate --out FILE' again"
    try:
        if path.stat().st_size > MAX_FILE:
            raise ProfileError(f"profile {path} is {path.stat().st_size} bytes, not a profile: {fix}")
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProfileError(f"profile {path} not found: give the file 'emobridge calibrate' wrote, or {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error).splitlines()[0]
        raise ProfileError(f"profile {path} cannot be read ({reason}): {fix}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProfileError(f"profile {path} is not an emobridge profile (no \"format\": \"{FORMAT}\"): {fix}")
    if data.get("version") != VERSION:
        raise ProfileError(f"profile {path} is version {data.get('version')!r}; this emobridge reads version "
                           f"{VERSION}: {fix}")
    offsets = data.get("offsets")
    if (not isinstance(offsets, dict) or set(offsets) != set(EMOTIONS)
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       and abs(v) <= MAX_OFFSET + 1e-6 for v in offsets.values())):
        raise ProfileError(f"profile {path} has damaged offsets (one finite number per emotion, "
                           f"|offset| ≤ {MAX_OFFSET:.3f}): {fix}")
    sha = data.get("model_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ProfileError(f"profile {path} does not name its model (model_sha256): {fix}")
    if model is not None and sha != model:
        raise ProfileError(f"profile {path} was made for another emotion model ({sha[:12]}…, this one is "
                           f"{model[:12]}…): {fix} with this model, or pass the --model it was made with")

    def number(key: str) -> float:
        value = data.get(key, 0.0)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    return Profile(tuple(float(offsets[name]) for name in EMOTIONS), sha, int(number("frames")),
                   number("neutral_before"), number("neutral_after"), str(data.get("source", "")))
