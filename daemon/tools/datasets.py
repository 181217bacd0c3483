"""Readers for FER2013 as users have it: Kaggle folders or the original CSV.

Returns plain numpy arrays (uint8 faces N×48×48, int64 labels in :data:`EMOTIONS`
order) so that evaluation needs no torch, and training can cache them.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError
from ..labels import EMOTIONS, FER_CSV_ORDER

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm"}
FACE_SIZE = 48
# Where a validation split may sit inside a FER2013 copy, in the order they are tried (Kaggle calls it test/).
VAL_FOLDERS = ("val", "test", "PublicTest")


@dataclass(frozen=True)
class FaceSet:
    """Grey 48×48 faces with their class indices (in :data:`EMOTIONS` order)."""

    images: np.ndarray  # uint8, N×48×48
    labels: np.ndarray  # int64, N
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(EMOTIONS))
        return {name: int(c) for name, c in zip(EMOTIONS, counts)}


def read_grey(path: Path, size: int = FACE_SIZE) -> np.ndarray:
    """One image file as a size×size uint8 grey array."""
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DatasetError(f"cannot read image {path}: the file is missing, empty or not an image")
    if image.shape != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    return image


def is_class_folder(path: Path) -> bool:
    """True for a folder laid out as ``<class>/*.jpg`` with FER class names."""
    return path.is_dir() and any((path / name).is_dir() for name in EMOTIONS)


def load_class_folder(root: Path) -> FaceSet:
    """Read ``root/<class>/*.jpg`` (class folder names as in FER2013, any case)."""
    root = Path(root)
    if not is_class_folder(root):
        raise DatasetError(f"{root} has no class folders: expected {root}/<class>/*.jpg with classes {', '.join(EMOTIONS)}")
    images: list[np.ndarray] = []
    labels: list[int] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        name = folder.name.lower()
        if name not in EMOTIONS:
            raise DatasetError(f"{folder}: unknown class folder {folder.name!r}; expected one of {', '.join(EMOTIONS)}")
        for file in sorted(folder.iterdir()):
            if file.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_grey(file))
                labels.append(EMOTIONS.index(name))
    if not images:
        raise DatasetError(f"{root} holds no images")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64), str(root))


def _csv_face(row: dict[str, str], where: str) -> tuple[np.ndarray, int]:
    """One fer2013.csv row as (48×48 face, class index in :data:`EMOTIONS` order)."""
    emotion = (row["emotion"] or "").strip()
    if not (emotion.isdigit() and int(emotion) < len(FER_CSV_ORDER)):
        raise DatasetError(f"{where}: emotion must be 0 to {len(FER_CSV_ORDER) - 1}, got {emotion!r}")
    try:
        pixels = np.array((row["pixels"] or "").split(), dtype=np.uint8)
    except (ValueError, OverflowError):
        raise DatasetError(f"{where}: pixels must be grey levels 0 to 255 separated by spaces") from None
    if pixels.size != FACE_SIZE * FACE_SIZE:
        raise DatasetError(f"{where}: expected {FACE_SIZE * FACE_SIZE} pixels, found {pixels.size}")
    return pixels.reshape(FACE_SIZE, FACE_SIZE), EMOTIONS.index(FER_CSV_ORDER[int(emotion)])


def load_fer_csv(path: Path, usages: tuple[str, ...]) -> FaceSet:
    """Rows of the original ``fer2013.csv`` (emotion,pixels,Usage) whose Usage is in *usages*."""
    path = Path(path)
    images: list[np.ndarray] = []
    labels: list[int] = []
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetError(f"{path}: not a fer2013.csv, missing column(s) {', '.join(sorted(missing))}")
        for line, row in enumerate(reader, start=2):
            if row["Usage"] not in usages:
                continue
            image, label = _csv_face(row, f"{path}:{line}")
            images.append(image)
            labels.append(label)
    if not images:
        raise DatasetError(f"{path}: no rows with Usage in {usages}")
    return FaceSet(np.stack(images), np.asarray(labels, dtype=np.int64), f"{path}[{'+'.join(usages)}]")


def find_val_folder(data: str | Path) -> Path:
    """The class folder of a validation split: *data* itself, else the first of :data:`VAL_FOLDERS` inside it."""
    data = Path(data)
    for candidate in (data, *(data / name for name in VAL_FOLDERS)):
        if is_class_folder(candidate):
            return candidate
    raise DatasetError(f"{data}: no FER2013 class folders: expected {data}/<class>/*.jpg or "
                       f"{data}/{'|'.join(VAL_FOLDERS)}/<class>/*.jpg with classes {', '.join(EMOTIONS)}")


def load_split(data: str | Path, split: str) -> FaceSet:
    """The ``train`` or ``val`` split of a FER2013 copy in any of the layouts users have.

    * a folder with ``train/`` and ``val/`` (or Kaggle's ``test/``) class folders;
    * ``fer2013.csv`` (or a folder holding it): train = Training, val = PublicTest;
    * for ``val``, a bare class folder is taken as it is (see :func:`find_val_folder`).
    """
    data = Path(data)
    if not data.exists():
        raise DatasetError(f"data set {data} not found: give a FER2013 folder (train/ + val/ or test/) or fer2013.csv")
    csv_file = data if data.is_file() else data / "fer2013.csv"
    if csv_file.is_file():
        return load_fer_csv(csv_file, ("Training",) if split == "train" else ("PublicTest",))
    if split != "train":
        return load_class_folder(find_val_folder(data))
    if not is_class_folder(data / "train"):
        raise DatasetError(f"{data}: no train split found; expected train/ with class folders, or fer2013.csv")
    return load_class_folder(data / "train")
