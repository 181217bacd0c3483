"""A tiny FER-like data set generated at test time, in every layout users have."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emobridge.labels import EMOTIONS, FER_CSV_ORDER


def face(label: int, seed: int) -> np.ndarray:
    """A 48×48 grey image whose brightness pattern depends on the class (learnable, not trivial)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 60, (48, 48)).astype(np.uint8)
    row = 4 + 6 * label
    image[row:row + 6, :] = 220
    return image


def write_folders(root: Path, split: str, per_class: int, seed: int = 0) -> Path:
    for label, name in enumerate(EMOTIONS):
        folder = root / split / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            cv2.imwrite(str(folder / f"{split}_{i}.png"), face(label, seed + 1000 * label + i))
    return root


def write_csv(path: Path, per_class: int) -> Path:
    lines = ["emotion,pixels,Usage"]
    for usage, offset in (("Training", 0), ("PublicTest", 500), ("PrivateTest", 900)):
        for name in EMOTIONS:
            for i in range(per_class):
                pixels = face(EMOTIONS.index(name), offset + i).ravel()
                lines.append(f"{FER_CSV_ORDER.index(name)},{' '.join(map(str, pixels))},{usage}")
    path.write_text("\n".join(lines) + "\n")
    return path
