"""Video clips for the camera cases, built from the demo clip's faces: two faces, faces coming and going, none.

A scene is a list of (seconds, faces) spans; each face is a patch cut around a face of the demo
clip at a given second, placed at an (x, y) position on a plain grey 640x480 frame. The clips are
written as MJPG AVI (any OpenCV can read it) at 15 fps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emobridge.demo import demo_clip_path
from emobridge.perception.faces import FaceDetector

WIDTH, HEIGHT, FPS = 640, 480, 15
BACKGROUND = 110  # grey, with no structure the cascade could take for a face

# Seconds of the demo clip where each face shows an expression the model reads reliably.
COLLINS_HAPPY = 1.5
HOPPER_NEUTRAL = 21.5
COLLINS_SURPRISE = 5.0


@dataclass(frozen=True)
class Placed:
    patch: np.ndarray
    x: int
    y: int


def face_patch(second: float, face: int = 150) -> np.ndarray:
    """The face in the demo clip at *second*, *face* px wide, with half a face of margin all round.

    The margin matters: the Haar cascade finds a face on a plain background far less often
    when the hair and shoulders around it are cut away.
    """
    capture = cv2.VideoCapture(str(demo_clip_path()))
    capture.set(cv2.CAP_PROP_POS_FRAMES, round(second * 15))
    ok, frame = capture.read()
    capture.release()
    assert ok, f"the demo clip has no frame at {second} s"
    box = FaceDetector().detect_largest(frame)
    assert box is not None, f"no face in the demo clip at {second} s"
    pad = box.w // 2
    patch = frame[max(0, box.y - pad):box.y + box.h + pad, max(0, box.x - pad):box.x + box.w + pad]
    scale = face / box.w
    return cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def frame_with(faces: list[Placed]) -> np.ndarray:
    frame = np.full((HEIGHT, WIDTH, 3), BACKGROUND, np.uint8)
    for face in faces:
        h, w = face.patch.shape[:2]
        h, w = min(h, HEIGHT - face.y), min(w, WIDTH - face.x)
        frame[face.y:face.y + h, face.x:face.x + w] = face.patch[:h, :w]
    return frame


def write_clip(path: Path, scene: list[tuple[float, list[Placed]]], fps: int = FPS) -> Path:
    """Write each span's frame for its seconds; a little noise per frame, as a webcam has."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    rng = np.random.default_rng(7)
    for seconds, faces in scene:
        still = frame_with(faces).astype(np.int16)
        for _ in range(round(seconds * fps)):
            noisy = np.clip(still + rng.integers(-2, 3, still.shape), 0, 255).astype(np.uint8)
            writer.write(noisy)
    writer.release()
    return path


def frames_of(scene: list[tuple[float, list[Placed]]], fps: int = FPS) -> list[tuple[float, np.ndarray]]:
    """The same scene in memory, as (time, frame) pairs, for tests that need no file."""
    out, t = [], 0.0
    for seconds, faces in scene:
        frame = frame_with(faces)
        for _ in range(round(seconds * fps)):
            out.append((t, frame))
            t += 1 / fps
    return out
