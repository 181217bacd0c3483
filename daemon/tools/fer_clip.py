"""A tracking test clip built from FER2013 faces: one face always in view, swaying, a new face every few seconds.

FER2013 faces are 48×48 crops cut tight from brows to chin. Each is shown as a 640×480
frame: grown with its edge pixels repeated (so the cascade sees a little hair and cheek
around the face, as it would on a webcam), scaled to a face width between ``min_face`` and
``max_face`` pixels (the performer leaning in and out: the width moves slowly from one end to
the other and back over the clip), and blended into a plain room-like background through a soft round
mask. The face sways on a slow, irregular path (a sum of sines, continuous across the
changes of face) with a little breathing in its size; every ``hold`` seconds the next face
takes its place. Sensor noise changes every frame.

Deterministic for a seed; written as MJPG AVI (any OpenCV reads it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..labels import EMOTIONS

WIDTH, HEIGHT = 640, 480
GROW = 0.3  # edge-repeated margin added round the 48 px crop, as a share of it, each side
NOISE = 2   # sensor noise, ± grey levels


@dataclass(frozen=True)
class ClipFace:
    """Which face is shown in a stretch of the clip, and how large at its start (face width in frame pixels)."""

    path: Path
    label: str
    width: int
    start_s: float


def face_width(t: float, seconds: float, min_face: int, max_face: int) -> float:
    """The face width at *t* s: from *min_face* to *max_face* (geometrically) and back over the clip."""
    phase = 0.5 - 0.5 * math.cos(2 * math.pi * t / seconds)
    return min_face * (max_face / min_face) ** phase


def place(t: float, width: float) -> tuple[float, float, float]:
    """The face's centre and shown width at *t* s, kept wholly inside the frame."""
    cx, cy, grow = sway(t)
    half = width * grow / 2 * (1 + GROW)
    cx = min(max(cx, half + 4), WIDTH - half - 4)
    cy = min(max(cy, half + 4), HEIGHT - half - 4)
    return cx, cy, width * grow


def pick_faces(val_dir: Path, spans: list[list[tuple[float, float, float]]], seed: int,
               bg: np.ndarray) -> list[tuple[Path, str]]:
    """One FER face from ``val_dir/<class>/*.jpg`` per span of the clip, classes taken in turn, chosen by *seed*.

    spans: for each face, a few (x, y, width) places it takes in its stretch of the clip.

    Only faces that OpenCV's cascade finds at full resolution in every one of those places are
    taken (FER2013 has profiles, hands over faces and odd crops): the clip is one where a
    face is always visible, so every miss is the tracker's.
    """
    from ..perception.faces import FaceDetector

    rng = np.random.default_rng(seed)
    by_class = {name: sorted((val_dir / name).glob("*.jpg")) for name in EMOTIONS if (val_dir / name).is_dir()}
    by_class = {name: files for name, files in by_class.items() if files}
    if not by_class:
        raise FileNotFoundError(f"{val_dir} has no <class>/*.jpg folders of FER2013 faces")
    reference = FaceDetector(detect_width=10_000, min_face=40)
    names = sorted(by_class)
    picked = []
    for i, places in enumerate(spans):
        name = names[i % len(names)]
        files = by_class[name]
        for _ in range(200):
            path = files[int(rng.integers(len(files)))]
            face = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            shown = (render(bg, face, w, (cx, cy)).astype(np.uint8) for cx, cy, w in places)
            if all(reference.detect(frame) for frame in shown):
                picked.append((path, name))
                break
        else:
            raise ValueError(f"no face in {val_dir / name} is found by the cascade in span {i} of the clip")
    return picked


def background(seed: int) -> np.ndarray:
    """A plain room: a lit wall gradient and a few dark and light panels (nothing face-like)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    wall = 95 + 40 * (xx / WIDTH) + 20 * (yy / HEIGHT)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, WIDTH - 120)), int(rng.integers(0, HEIGHT - 120))
        w, h = int(rng.integers(60, 200)), int(rng.integers(60, 200))
        wall[y0:y0 + h, x0:x0 + w] += float(rng.uniform(-35, 35))
    return cv2.GaussianBlur(np.clip(wall, 0, 255), (0, 0), 3)


def sway(t: float) -> tuple[float, float, float]:
    """Where the face centre is at *t* seconds (frame pixels) and its size factor: slow and irregular."""
    cx = WIDTH / 2 + 150 * math.sin(0.45 * t) + 35 * math.sin(1.7 * t + 1.0)
    cy = HEIGHT / 2 + 60 * math.sin(0.31 * t + 0.5) + 18 * math.sin(2.3 * t)
    return cx, cy, 1.0 + 0.06 * math.sin(0.9 * t)


def face_layer(face: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """The grey face grown by GROW with repeated edges, scaled so the face is *width* px, and its soft mask."""
    pad = round(face.shape[0] * GROW)
    grown = cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    side = max(8, round(width * (1 + 2 * GROW)))
    grown = cv2.resize(grown, (side, side), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    r = np.hypot(*np.mgrid[0:side, 0:side].astype(np.float32) - (side - 1) / 2) / (side / 2)
    mask = np.clip((1.0 - r) / 0.25, 0.0, 1.0)  # full inside 3/4 of the radius, fading to the edge
    return grown, mask


def render(bg: np.ndarray, face: np.ndarray, width: float, centre: tuple[float, float]) -> np.ndarray:
    """One grey frame: *face* at *width* px centred at *centre* on *bg* (float)."""
    layer, mask = face_layer(face, width)
    side = layer.shape[0]
    x0, y0 = round(centre[0] - side / 2), round(centre[1] - side / 2)
    out = bg.copy()
    fx0, fy0 = max(0, -x0), max(0, -y0)
    bx0, by0 = max(0, x0), max(0, y0)
    bx1, by1 = min(WIDTH, x0 + side), min(HEIGHT, y0 + side)
    if bx1 > bx0 and by1 > by0:
        m = mask[fy0:fy0 + by1 - by0, fx0:fx0 + bx1 - bx0]
        region = out[by0:by1, bx0:bx1]
        out[by0:by1, bx0:bx1] = region * (1 - m) + layer[fy0:fy0 + by1 - by0, fx0:fx0 + bx1 - bx0] * m
    return out


def build_fer_clip(val_dir: str | Path, out: str | Path, *, seconds: float = 60.0, fps: float = 30.0,
                   hold: float = 5.0, min_face: int = 48, max_face: int = 200, seed: int = 16) -> list[ClipFace]:
    """Write the clip to *out*; returns which face is shown when (its label and width)."""
    val_dir, out = Path(val_dir), Path(out)
    count = max(1, math.ceil(seconds / hold))
    def at(t: float) -> tuple[float, float, float]:
        return place(t, face_width(t, seconds, min_face, max_face))

    bg = background(seed)
    spans = [[at(min(seconds, (i + k / 8) * hold)) for k in range(9)] for i in range(count)]
    faces = [ClipFace(path, label, round(spans[i][0][2]), i * hold)
             for i, (path, label) in enumerate(pick_faces(val_dir, spans, seed, bg))]
    noise = np.random.default_rng(seed + 2)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    if not writer.isOpened():
        raise OSError(f"cannot write {out}")
    images = {face.path: cv2.imread(str(face.path), cv2.IMREAD_GRAYSCALE) for face in faces}
    try:
        for index in range(round(seconds * fps)):
            t = index / fps
            face = faces[min(len(faces) - 1, int(t // hold))]
            cx, cy, shown = at(t)
            grey = render(bg, images[face.path], shown, (cx, cy))
            grey = grey + noise.integers(-NOISE, NOISE + 1, grey.shape)
            frame = np.clip(grey, 0, 255).astype(np.uint8)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    return faces
