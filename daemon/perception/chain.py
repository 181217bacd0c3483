"""One frame through the perception stages: detect → crop → classify → smooth.

Faces are found with a :class:`~emobridge.perception.faces.FaceTracker` by default (a local
search around the last face, the whole frame only now and then), which keeps the
chain to a few milliseconds a frame. ``process`` can record how long each stage
took, so ``emobridge bench`` measures this very code rather than a copy of it.

Which faces count is the ``follow`` setting (the mapping's ``faces:``):

- ``largest``: the performer's face (the biggest, then tracked); the default.
- ``average``: every face in view (an audience) through a :class:`MultiFaceTracker`;
  the music follows the mean of their probabilities.
- ``each``: as ``average`` for the music as a whole, and besides, each face keeps a
  *slot* (0, 1, ...) while it stays in view and has its own smoothed emotion, so it
  can drive its own voice on its own MIDI channel.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import ProfileError
from .calibration import Profile, fit_profile
from .emotion import EmotionClassifier, EmotionReading
from .faces import FaceBox, FaceTracker, MultiFaceTracker, TrackedFace, crop_face, to_grey
from ..labels import FOLLOW_MODES
from .smoothing import EmotionSmoother, SmoothingConfig
from ..state import EmotionState

STAGES: tuple[str, ...] = ("detect", "crop", "classify", "smooth")
log = logging.getLogger("emobridge")


class Detector(Protocol):
    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]: ...


@dataclass(frozen=True)
class FaceResult:
    """One face of a frame: where it is, what it reads now, and (``each``) its own steady emotion."""

    id: int                      # tracking id: the same while the face stays in view
    box: FaceBox
    reading: EmotionReading
    slot: int | None = None      # faces: each: the face's voice (0-based), kept while it stays in view
    state: EmotionState | None = None  # faces: each: this face's own smoothed emotion


@dataclass(frozen=True)
class FrameResult:
    """What one frame produced: the main face (if any), its raw reading, the smoothed state, and every face."""

    box: FaceBox | None
    reading: EmotionReading | None
    state: EmotionState
    faces: tuple[FaceResult, ...] = ()

    def voices(self) -> dict[int, EmotionState]:
        """Slot → that face's own emotion (``each`` only; empty otherwise)."""
        return {face.slot: face.state for face in self.faces if face.slot is not None and face.state is not None}


CalibrationDone = Callable[[Profile | None, str | None], None]


@dataclass
class _Calibration:
    until: float  # frame time at which the recording ends
    done: CalibrationDone
    readings: list[np.ndarray] = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.readings = []


class Perception:
    """detector: anything with ``detect(image) -> list[FaceBox]`` (largest/tracked face first);
    default a fresh :class:`FaceTracker` (``largest``) or :class:`MultiFaceTracker`. A plain
    :class:`~emobridge.perception.faces.FaceDetector` searches the whole frame every time (slower, kept for
    comparison)."""

    def __init__(self, classifier: EmotionClassifier, detector: Detector | None = None,
                 smoother: EmotionSmoother | None = None, follow: str = "largest", max_faces: int = 4):
        self.classifier = classifier
        self.smoother = smoother or EmotionSmoother()
        self.follow = ""
        self.max_faces = max_faces
        self.detector: Detector = FaceTracker()
        self.configure(follow, max_faces)
        self._apply_configuration(detector)
        self._wanted_profile: tuple[Profile | None] | None = None  # (profile,) asked for, applied at the next frame
        self._wanted_calibration: tuple[float, CalibrationDone] | None = None
        self._calibration: _Calibration | None = None

    # --- resting-face profile: requested from any thread, applied by the perception thread ---------
    def request_profile(self, profile: Profile | None) -> None:
        """Correct readings with *profile* (None: none) from the next frame on."""
        self._wanted_profile = (profile,)

    def request_calibration(self, seconds: float, done: CalibrationDone) -> None:
        """Record the next *seconds* of the main face as its resting face and fit a profile to it.

        At the end the new profile is in use (from that frame on) and ``done(profile, None)`` is
        called on the perception thread; with too few faces the old profile stays and
        ``done(None, reason)`` says why.
        """
        self._wanted_calibration = (seconds, done)

    def _apply_requests(self, now: float) -> None:
        wanted, self._wanted_profile = self._wanted_profile, None
        if wanted is not None:
            try:
                self.classifier.use_profile(wanted[0])
            except ProfileError as error:  # mid-show: the profile in use stays
                log.error("profile not changed, the previous one stays in use: %s", error)
        calibration, self._wanted_calibration = self._wanted_calibration, None
        if calibration is not None:
            self._calibration = _Calibration(now + calibration[0], calibration[1])

    def _record_resting(self, crop: np.ndarray, reading: EmotionReading) -> None:
        """While calibrating: keep the model's own reading of the main face."""
        if self._calibration is None:
            return
        profile = getattr(self.classifier, "profile", None)
        raw = reading.probs if profile is None else self.classifier.raw_probabilities(crop[None])[0]
        self._calibration.readings.append(np.asarray(raw, dtype=np.float64))

    def _finish_calibration(self, now: float) -> None:
        calibration = self._calibration
        if calibration is None or now < calibration.until:
            return
        self._calibration = None
        try:
            profile = fit_profile(np.array(calibration.readings).reshape(-1, 7), self.classifier.identity,
                                  source="recalibrated live")
        except ProfileError as error:
            calibration.done(None, str(error))
            return
        self.classifier.use_profile(profile)
        calibration.done(profile, None)

    def configure(self, follow: str, max_faces: int) -> None:
        """Change which faces count (a mapping reload, from any thread): it takes effect at the next
        frame, in the perception thread, and the trackers start afresh if it changed."""
        if follow not in FOLLOW_MODES:
            raise ValueError(f"faces must be one of {', '.join(FOLLOW_MODES)}, got {follow!r}")
        self._wanted = (follow, max_faces)

    def _apply_configuration(self, detector: Detector | None = None) -> None:
        follow, max_faces = self._wanted
        if detector is None and (follow, max_faces) == (self.follow, self.max_faces):
            return
        self.follow, self.max_faces = follow, max_faces
        if detector is not None:
            self.detector = detector
        elif follow == "largest":
            self.detector = FaceTracker()
        else:
            self.detector = MultiFaceTracker(max_faces=max_faces)
        self._face_smoothers: dict[int, EmotionSmoother] = {}  # track id → its own smoother (each)
        self._slots: dict[int, int] = {}  # track id → voice slot (each)
        self._readings: dict[int, EmotionReading] = {}  # track id → its latest reading

    def process(self, image: np.ndarray, now: float,
                timings: dict[str, float] | None = None) -> FrameResult:
        """Run one frame taken at *now* seconds.

        timings: if given, the seconds (``time.perf_counter``) each stage took are stored
        into it under :data:`STAGES` ("crop" and "classify" are 0 when no face was found).
        """
        self._apply_configuration()
        self._apply_requests(now)
        clock = time.perf_counter
        t0 = clock()
        tracked = self._find(image)
        t1 = clock()
        crops, readings, t2, t3 = [], [], t1, t1  # no face: no crop, no classify
        if tracked:
            grey = to_grey(image)
            fresh = [face for face in tracked if not (face.held and face.id in self._readings)]
            crops = [crop_face(grey, face.box, self.classifier.input_size) for face in fresh]
            t2 = clock()
            for face, crop in zip(fresh, crops):
                self._readings[face.id] = self.classifier.classify(crop)
                if face is tracked[0]:
                    self._record_resting(crop, self._readings[face.id])
            # A held face (missed for a frame or two) is not classified: its box may show the
            # background by now, so it keeps its last reading.
            readings = [self._readings[face.id] for face in tracked]
            t3 = clock()
        for gone in [i for i in self._readings if i not in {face.id for face in tracked}]:
            del self._readings[gone]
        if readings:
            probs = np.mean([reading.probs for reading in readings], axis=0)
            state = self.smoother.update(probs, now)
        else:
            state = self.smoother.update(None, now)
        faces = self._faces(tracked, readings, now)
        self._finish_calibration(now)
        if timings is not None:
            timings.update(detect=t1 - t0, crop=t2 - t1, classify=t3 - t2, smooth=clock() - t3)
        first = faces[0] if faces else None
        return FrameResult(first.box if first else None, first.reading if first else None, state, faces)

    def _find(self, image: np.ndarray) -> list[TrackedFace]:
        if isinstance(self.detector, MultiFaceTracker):
            return self.detector.update(image)
        boxes = self.detector.detect(image)
        held = getattr(self.detector, "last_mode", "") == "hold"
        return [TrackedFace(0, boxes[0], held)] if boxes else []  # largest: the one face the music follows

    def _faces(self, tracked: list[TrackedFace], readings: list[EmotionReading], now: float) -> tuple[FaceResult, ...]:
        if self.follow != "each":
            return tuple(FaceResult(face.id, face.box, reading) for face, reading in zip(tracked, readings))
        present = {face.id for face in tracked}
        for gone in [i for i in self._slots if i not in present]:  # a face that left frees its voice
            del self._slots[gone], self._face_smoothers[gone]
        results = []
        for face, reading in zip(tracked, readings):
            if face.id not in self._slots:
                self._slots[face.id] = min(set(range(len(self._slots) + 1)) - set(self._slots.values()))
                self._face_smoothers[face.id] = EmotionSmoother(self.smoother.config)
            state = self._face_smoothers[face.id].update(reading.probs, now)
            results.append(FaceResult(face.id, face.box, reading, self._slots[face.id], state))
        return tuple(results)

    def lost(self, now: float) -> EmotionState:
        """No frame at all (camera gone): the smoother follows the no-face policy, as for a lost face."""
        self._apply_configuration()
        self._apply_requests(now)
        self._finish_calibration(now)
        reset = getattr(self.detector, "reset", None)
        if reset is not None:
            reset()  # the face may be anywhere when frames come back
        self._face_smoothers.clear()
        self._slots.clear()
        self._readings.clear()
        return self.smoother.update(None, now)

    def set_smoothing(self, config: SmoothingConfig) -> None:
        """New smoothing settings (a mapping reload), for the main emotion and every face's own."""
        self.smoother.config = config
        for smoother in self._face_smoothers.values():
            smoother.config = config
