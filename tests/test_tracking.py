"""The face tracker: finds the face, follows it, finds it again; Perception uses it and times its stages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from emobridge.demo import demo_clip_path
from emobridge.perception.emotion import EmotionClassifier
from emobridge.perception.faces import FaceBox, FaceDetector, FaceTracker
from emobridge.perception.chain import STAGES, Perception
from emobridge.perception.sources import VideoFileSource


@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    """The first 60 frames of the demo clip (4 s, one face)."""
    with VideoFileSource(demo_clip_path()) as src:
        return [f.image for f in src if f.index < 60]


def near(a: FaceBox, b: FaceBox, tolerance: float = 0.25) -> bool:
    return (abs(a.center[0] - b.center[0]) < tolerance * b.w and abs(a.center[1] - b.center[1]) < tolerance * b.h
            and abs(a.w - b.w) < tolerance * b.w)


def test_tracker_finds_the_face_in_the_demo_clip_mostly_by_local_search(demo_frames):
    tracker, detector = FaceTracker(redetect_every=30), FaceDetector()
    modes = []
    for i, image in enumerate(demo_frames):
        boxes = tracker.detect(image)
        modes.append(tracker.last_mode)
        assert len(boxes) == 1, f"frame {i}: {boxes}"
        if i % 15 == 0:  # where the full-frame detector puts it
            assert near(boxes[0], detector.detect_largest(image))
    assert modes[0] == "full"
    assert modes.count("track") >= 0.8 * len(modes)
    assert 2 <= modes.count("full") <= 10  # every 30 frames, plus the odd local miss


def shifted(face: np.ndarray, dx: int, dy: int, size=(480, 640)) -> np.ndarray:
    frame = np.full((*size, 3), 120, np.uint8)
    h, w = face.shape[:2]
    frame[dy:dy + h, dx:dx + w] = face
    return frame


@pytest.fixture(scope="module")
def face_patch(demo_frames) -> np.ndarray:
    box = FaceDetector().detect_largest(demo_frames[0])
    pad = box.w // 4
    patch = demo_frames[0][max(0, box.y - pad):box.y + box.h + pad, max(0, box.x - pad):box.x + box.w + pad]
    return cv2.resize(patch, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)  # a face ~155 px wide


def test_tracker_follows_a_moving_face(face_patch):
    tracker = FaceTracker(redetect_every=1000)  # local search only, after the first frame
    h, w = face_patch.shape[:2]
    positions = [(10 + 8 * i, 5 + 3 * i) for i in range(40)]  # 8 px right, 3 px down a frame
    positions = [(x, y) for x, y in positions if x + w <= 640 and y + h <= 480]
    assert len(positions) >= 20
    for i, (x, y) in enumerate(positions):
        boxes = tracker.detect(shifted(face_patch, x, y))
        assert boxes, f"lost at frame {i}"
        cx, cy = boxes[0].center
        assert abs(cx - (x + w / 2)) < 0.15 * w and abs(cy - (y + h / 2)) < 0.15 * h
        if i > 0:
            assert tracker.last_mode in ("track", "full")


def test_tracker_drops_a_face_that_left_and_finds_it_again(face_patch):
    tracker = FaceTracker(hold_frames=2)
    empty = np.full((480, 640, 3), 120, np.uint8)
    assert tracker.detect(shifted(face_patch, 50, 40))
    held = [tracker.detect(empty) for _ in range(2)]
    assert all(len(b) == 1 for b in held) and tracker.last_mode == "hold"  # a missed frame or two is bridged
    assert tracker.detect(empty) == [] and tracker.last_mode == "none"
    assert tracker.box is None
    boxes = tracker.detect(shifted(face_patch, 300, 150))  # back, somewhere else
    assert boxes and tracker.last_mode == "full"
    assert boxes[0].center[0] > 300


def test_tracker_box_is_steady_on_a_still_face(face_patch):
    tracker = FaceTracker()
    rng = np.random.default_rng(0)
    frame = shifted(face_patch, 100, 60)
    widths, xs = [], []
    for i in range(35):
        noisy = np.clip(frame.astype(np.int16) + rng.integers(-4, 5, frame.shape), 0, 255).astype(np.uint8)
        box = tracker.detect(noisy)[0]
        if i < 5:  # settling from the first (full-frame) box to the local search's
            continue
        widths.append(box.w)
        xs.append(box.x)
    assert max(widths) - min(widths) <= 0.1 * np.median(widths)
    assert max(xs) - min(xs) <= 0.1 * np.median(widths)


def test_tracker_rejects_bad_settings():
    with pytest.raises(ValueError):
        FaceTracker(redetect_every=0)
    with pytest.raises(ValueError):
        FaceTracker(search=1.0)


def test_perception_uses_the_tracker_and_times_each_stage(demo_frames):
    perception = Perception(EmotionClassifier())
    assert isinstance(perception.detector, FaceTracker)
    timings: dict[str, float] = {}
    result = perception.process(demo_frames[0], 0.0, timings)
    assert result.box is not None and result.reading is not None
    assert set(timings) == set(STAGES) and all(t >= 0 for t in timings.values())
    empty = np.zeros((480, 640, 3), np.uint8)
    for t in (1.0, 1.1, 1.2):
        result = perception.process(empty, t, timings)
    assert result.box is None and timings["classify"] == 0.0
    assert perception.lost(2.0).face is False
    assert perception.process(demo_frames[1], 2.1).box is not None  # found afresh
