"""``emobridge calibrate``: record a few seconds of the performer's resting face into a profile.

Frames come from the camera, a video or a folder of images; the face in each (the largest, as
the daemon follows it) is classified by the model without correction, and
:func:`~emobridge.perception.calibration.fit_profile` fits the offsets that make those readings
neutral. The profile is written as a small JSON file for ``--profile FILE``.
"""

from __future__ import annotations

import numpy as np

from ..errors import ProfileError
from ..perception.calibration import Profile, fit_profile
from ..perception.emotion import EmotionClassifier
from ..perception.faces import FaceDetector, FaceTracker, crop_face, to_grey
from ..perception.sources import FrameSource, ImageFolderSource

DEFAULT_SECONDS = 5.0


def resting_readings(source: FrameSource, classifier: EmotionClassifier, seconds: float) -> np.ndarray:
    """The model's own readings (N×7) of the largest face in the first *seconds* of *source*."""
    # A folder's images are unrelated pictures: each is searched whole; a camera or video is tracked.
    detector = FaceDetector() if isinstance(source, ImageFolderSource) else FaceTracker()
    size = classifier.input_size
    readings, start = [], None
    for frame in source:
        start = frame.time if start is None else start
        if frame.time - start >= seconds:
            break
        boxes = detector.detect(frame.image)
        if boxes:
            crop = crop_face(to_grey(frame.image), boxes[0], size)
            readings.append(classifier.raw_probabilities(crop[None])[0])
    return np.array(readings, dtype=np.float64).reshape(-1, 7)


def calibrate(source: FrameSource, classifier: EmotionClassifier, seconds: float = DEFAULT_SECONDS) -> Profile:
    """A profile for the resting face the first *seconds* of *source* show."""
    readings = resting_readings(source, classifier, seconds)
    try:
        return fit_profile(readings, classifier.identity, source=source.name)
    except ProfileError as error:
        raise ProfileError(f"{source.name}: {error}") from None


def describe(profile: Profile) -> str:
    """What a profile does, for people."""
    from ..labels import EMOTIONS

    shifts = "  ".join(f"{name} {np.exp(v):.2f}x" for name, v in zip(EMOTIONS, profile.offsets))
    return (f"{profile.frames} frames of the resting face; read as neutral {profile.neutral_before:.0%} → "
            f"{profile.neutral_after:.0%} after calibration\nclass weights: {shifts}")
