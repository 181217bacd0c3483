"""Face detection with the bundled Haar cascade, and FER2013-style crops."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import emobridge.perception.faces as faces
from emobridge.demo import demo_clip_path
from emobridge.perception.faces import FaceBox, FaceDetector, crop_face, largest_face
from emobridge.errors import FaceDetectorError
from emobridge.perception.sources import VideoFileSource


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    """Every 10th frame of the demo clip (about 46 frames over all its expressions)."""
    with VideoFileSource(demo_clip_path()) as src:
        return [f.image for f in src if f.index % 10 == 0]


def test_demo_clip_has_a_face_in_nearly_every_frame(detector, demo_frames):
    found = [detector.detect_largest(image) for image in demo_frames]
    hits = sum(box is not None for box in found)
    assert hits >= 0.9 * len(demo_frames)
    for box in found:
        if box is not None:  # the performer's face, not a speck: at least a sixth of the frame
            assert box.w >= 640 / 6


def test_no_faces_in_a_faceless_video(tmp_path, detector):
    path = tmp_path / "empty_room.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 240))
    for i in range(5):  # a smooth gradient drifting across: nothing face-like
        ramp = np.tile(np.linspace(0, 255, 320, dtype=np.float32), (240, 1))
        writer.write(cv2.cvtColor(((ramp + 30 * i) % 256).astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    with VideoFileSource(path) as src:
        assert all(detector.detect(f.image) == [] for f in src)


def test_boxes_are_in_full_frame_coordinates(detector, demo_frames):
    image = demo_frames[0]
    box = detector.detect_largest(image)
    assert box is not None
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_LINEAR)
    big_box = detector.detect_largest(big)  # detected on a frame shrunk 4x, reported at 2x size
    assert big_box is not None
    assert big_box.center[0] == pytest.approx(2 * box.center[0], abs=0.15 * big_box.w)
    assert big_box.center[1] == pytest.approx(2 * box.center[1], abs=0.15 * big_box.h)
    assert big_box.w == pytest.approx(2 * box.w, rel=0.25)


def test_largest_face_first(detector, demo_frames):
    face = demo_frames[0]
    box = detector.detect_largest(face)
    patch = face[max(0, box.y - box.h // 3): box.y + box.h * 4 // 3, max(0, box.x - box.w // 3): box.x + box.w * 4 // 3]
    canvas = np.full((600, 900, 3), 180, np.uint8)
    small = cv2.resize(patch, None, fx=0.6, fy=0.6)
    canvas[20:20 + patch.shape[0], 20:20 + patch.shape[1]] = patch
    canvas[300:300 + small.shape[0], 600:600 + small.shape[1]] = small
    boxes = detector.detect(canvas)
    assert len(boxes) >= 2
    assert [b.area for b in boxes] == sorted((b.area for b in boxes), reverse=True)
    assert boxes[0].x < 450  # the big face is the one on the left
    assert largest_face(boxes) == boxes[0]
    assert largest_face([]) is None


def test_grey_input_works(detector, demo_frames):
    grey = cv2.cvtColor(demo_frames[0], cv2.COLOR_BGR2GRAY)
    assert detector.detect(grey)


def test_crop_face_is_48_square_uint8(demo_frames, detector):
    image = demo_frames[0]
    box = detector.detect_largest(image)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    crop = crop_face(grey, box)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert crop_face(image, box).shape == (48, 48)  # BGR is accepted too
    assert crop_face(grey, box, size=64).shape == (64, 64)


def test_crop_face_inside_frame_is_the_box():
    grey = np.random.default_rng(0).integers(0, 256, (200, 300), dtype=np.uint8)
    box = FaceBox(50, 40, 96, 96)
    expected = cv2.resize(grey[40:136, 50:146], (48, 48), interpolation=cv2.INTER_AREA)
    assert np.array_equal(crop_face(grey, box), expected)


def test_crop_face_clamps_and_pads_at_edges():
    grey = np.zeros((100, 100), np.uint8)
    grey[:, 90:] = 200  # bright right edge
    crop = crop_face(grey, FaceBox(70, 70, 60, 60))  # hangs off the bottom right
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    # The part beyond the frame repeats the edge pixels instead of going black.
    assert crop[:, -5:].min() == 200
    assert crop_face(grey, FaceBox(-20, -20, 40, 40)).shape == (48, 48)
    with pytest.raises(ValueError, match="outside"):
        crop_face(grey, FaceBox(150, 150, 20, 20))


def test_crop_margin_grows_the_square():
    grey = np.zeros((200, 200), np.uint8)
    grey[90:110, 90:110] = 255
    tight = crop_face(grey, FaceBox(80, 80, 40, 40))
    loose = crop_face(grey, FaceBox(80, 80, 40, 40), margin=0.5)
    assert (loose > 128).sum() < (tight > 128).sum()


def test_facebox_area():
    assert FaceBox(1, 2, 3, 4).area == 12


def test_missing_cascade_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(cv2.data, "haarcascades", str(tmp_path) + "/")
    with pytest.raises(FaceDetectorError) as err:
        FaceDetector()
    message = str(err.value)
    assert faces.CASCADE_FILE in message
    assert "pip install 'opencv-python>=4.8,<5'" in message
