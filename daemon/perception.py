"""One frame through the perception stages: detect → crop → classify → smooth.

Faces are found with a :class:`~emobridge.faces.FaceTracker` by default (a local
search around the last face, the whole frame only now and then), which keeps the
chain to a few milliseconds a frame. ``process`` can record how long each stage
took, so ``emobridge bench`` measures this very code rather than a copy of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .emotion import EmotionClassifier, EmotionReading
from .faces import FaceBox, FaceTracker, crop_face, to_grey
from .smoothing import EmotionSmoother, EmotionState

STAGES: tuple[str, ...] = ("detect", "crop", "classify", "smooth")


class Detector(Protocol):
    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]: ...


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced: the face used (if any), its raw reading and the smoothed state."""

    box: FaceBox | None
    reading: EmotionReading | None
    state: EmotionState


class Perception:
    """detector: anything with ``detect(image) -> list[FaceBox]`` (largest/tracked face first);
    default a fresh :class:`FaceTracker`. A plain :class:`~emobridge.faces.FaceDetector` searches
    the whole frame every time (slower, kept for comparison)."""

    def __init__(self, classifier: EmotionClassifier, detector: Detector | None = None,
                 smoother: EmotionSmoother | None = None):
        self.classifier = classifier
        self.detector = detector if detector is not None else FaceTracker()
        self.smoother = smoother or EmotionSmoother()

    def process(self, image: np.ndarray, now: float,
                timings: dict[str, float] | None = None) -> FrameResult:
        """Run one frame taken at *now* seconds.

        timings: if given, the seconds (``time.perf_counter``) each stage took are stored
        into it under :data:`STAGES` ("crop" and "classify" are 0 when no face was found).
        """
        clock = time.perf_counter
        t0 = clock()
        boxes = self.detector.detect(image)
        t1 = clock()
        if not boxes:
            state = self.smoother.update(None, now)
            if timings is not None:
                timings.update(detect=t1 - t0, crop=0.0, classify=0.0, smooth=clock() - t1)
            return FrameResult(None, None, state)
        face = crop_face(to_grey(image), boxes[0], self.classifier.input_size)
        t2 = clock()
        reading = self.classifier.classify(face)
        t3 = clock()
        state = self.smoother.update(reading.probs, now)
        if timings is not None:
            timings.update(detect=t1 - t0, crop=t2 - t1, classify=t3 - t2, smooth=clock() - t3)
        return FrameResult(boxes[0], reading, state)

    def lost(self, now: float) -> EmotionState:
        """No frame at all (camera gone): the smoother fades as it does for a lost face."""
        reset = getattr(self.detector, "reset", None)
        if reset is not None:
            reset()  # the face may be anywhere when frames come back
        return self.smoother.update(None, now)
