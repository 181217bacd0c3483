"""The tracking clip of issue 16 (tools/fer_clip.py), built here from FER-style crops of the demo clip's faces."""

from __future__ import annotations

import cv2
import numpy as np

from emobridge.demo import demo_clip_path
from emobridge.perception.faces import FaceDetector, crop_face, to_grey
from emobridge.perception.sources import VideoFileSource
from emobridge.tools.fer_clip import HEIGHT, WIDTH, build_fer_clip


def test_the_clip_always_shows_one_face_the_cascade_finds(tmp_path):
    val = tmp_path / "val"
    detector = FaceDetector()
    with VideoFileSource(demo_clip_path()) as source:
        for frame in source:
            if frame.index % 30 == 0 and frame.index <= 150:
                box = detector.detect_largest(frame.image)
                folder = val / ("happy" if frame.index < 90 else "neutral")
                folder.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(folder / f"{frame.index}.jpg"), crop_face(to_grey(frame.image), box, 48))
    out = tmp_path / "clip.avi"
    faces = build_fer_clip(val, out, seconds=4.0, fps=5.0, hold=2.0, min_face=110, max_face=200)
    assert [face.start_s for face in faces] == [0.0, 2.0]
    assert [face.label for face in faces] == ["happy", "neutral"]  # classes taken in turn
    reference = FaceDetector(detect_width=10_000)
    found = 0
    with VideoFileSource(out) as source:
        frames = list(source)
    assert len(frames) == 20 and frames[0].image.shape == (HEIGHT, WIDTH, 3)
    for frame in frames:
        found += bool(reference.detect(frame.image))
    assert found >= 16  # faces are picked where the full-resolution cascade finds them at 9 places of their path
    centres = [np.argwhere(np.abs(f.image[:, :, 0].astype(int) - f.image[0, 0, 0]) > 40).mean(axis=0) for f in frames]
    assert max(np.linalg.norm(a - b) for a, b in zip(centres, centres[1:])) < 60  # a sway, not jumps
    assert build_fer_clip(val, tmp_path / "again.avi", seconds=4.0, fps=5.0, hold=2.0, min_face=110,
                          max_face=200) == faces  # deterministic for a seed
