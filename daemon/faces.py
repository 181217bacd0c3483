"""Face finding and FER2013-style face crops.

Detection uses the frontal-face Haar cascade that ships inside the
opencv-python wheel: no model download, a few milliseconds a frame on a
downscaled image, and (usefully) the same kind of detector that was used
to cut the FER2013 faces the emotion model was trained on, so a Haar box
cropped as-is looks like a FER2013 image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "CASCADE_FILE",
    "FER_MARGIN",
    "FaceBox",
    "FaceDetector",
    "FaceDetectorError",
    "cascade_path",
    "crop_face",
    "largest_face",
    "to_grey",
]

CASCADE_FILE = "haarcascade_frontalface_default.xml"

# How much to grow the Haar box (fraction of its size, each side) so the crop
# is framed like FER2013. Measured by running this cascade over 360 FER2013
# validation faces (upscaled and padded so a face filling the frame can be
# found): the median box was 47.25 px wide on the 48 px image, centred to
# within 0.25 px (quartiles 44.5-49.75 px). So FER crops *are* the Haar box,
# tight from brows to chin, and no margin is needed.
FER_MARGIN = 0.0

_INSTALL_HINT = "pip install 'opencv-python>=4.8,<5'"


class FaceDetectorError(RuntimeError):
    """The Haar cascade could not be found or loaded."""


@dataclass(frozen=True)
class FaceBox:
    """A face in full-frame pixel coordinates (top-left corner and size)."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)


def cascade_path() -> Path:
    """Where the pip wheel keeps the frontal-face cascade.

    Raises FaceDetectorError when this OpenCV build has none: Debian's
    python3-opencv has no ``cv2.data``, and OpenCV 5 dropped the cascades.
    """
    folder = getattr(getattr(cv2, "data", None), "haarcascades", None)
    if not folder:
        raise FaceDetectorError(
            f"this OpenCV ({cv2.__version__}) does not ship the Haar cascade {CASCADE_FILE}: "
            f"{_INSTALL_HINT}"
        )
    path = Path(folder) / CASCADE_FILE
    if not path.is_file():
        raise FaceDetectorError(
            f"Haar cascade {CASCADE_FILE} not found in {folder}: {_INSTALL_HINT}"
        )
    return path


def to_grey(image: np.ndarray) -> np.ndarray:
    """A uint8 single-channel view of a BGR, BGRA or already-grey image."""
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[:, :, 0]
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


class FaceDetector:
    """Finds frontal faces with OpenCV's bundled Haar cascade.

    detect_width: frames wider than this are shrunk to it before detection;
        the cascade's cost grows with pixel count and a face a performer
        shows a webcam is large, so 320 px keeps it to a few ms a frame.
    min_face: smallest face to report, in full-frame pixels. (The cascade's
        own window is 24 px on the shrunk frame, so on a 640 px frame with
        detect_width=320 nothing under 48 px is found whatever this says.)
    """

    def __init__(self, detect_width: int = 320, min_face: int = 40) -> None:
        if detect_width < 24:
            raise ValueError(f"detect_width must be at least 24 px (the cascade window), got {detect_width}")
        self.detect_width = detect_width
        self.min_face = min_face
        if not hasattr(cv2, "CascadeClassifier"):
            raise FaceDetectorError(
                f"this OpenCV ({cv2.__version__}) has no CascadeClassifier: {_INSTALL_HINT}"
            )
        path = cascade_path()
        self._cascade = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise FaceDetectorError(
                f"Haar cascade {path} could not be loaded (damaged install?): "
                f"reinstall with {_INSTALL_HINT}"
            )

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """All faces in the frame, in full-frame coordinates, largest first."""
        grey = to_grey(image_bgr)
        height, width = grey.shape[:2]
        scale = min(1.0, self.detect_width / width) if width else 1.0
        if scale < 1.0:
            small = cv2.resize(
                grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
            )
        else:
            small = grey
        # Equalising evens out webcam exposure and stage lighting, which the
        # cascade (trained on normalised windows) is sensitive to.
        small = cv2.equalizeHist(small)
        min_side = max(1, round(self.min_face * scale))
        found = self._cascade.detectMultiScale(
            small, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side)
        )
        boxes = []
        for x, y, w, h in np.asarray(found).reshape(-1, 4):
            x0 = max(0, round(x / scale))
            y0 = max(0, round(y / scale))
            x1 = min(width, round((x + w) / scale))
            y1 = min(height, round((y + h) / scale))
            if x1 > x0 and y1 > y0:
                boxes.append(FaceBox(x0, y0, x1 - x0, y1 - y0))
        boxes.sort(key=lambda b: b.area, reverse=True)
        return boxes

    def detect_largest(self, image_bgr: np.ndarray) -> FaceBox | None:
        """The biggest (so usually the nearest: the performer's) face, or None."""
        return largest_face(self.detect(image_bgr))


def largest_face(boxes: list[FaceBox]) -> FaceBox | None:
    """The box with the largest area, or None for no boxes."""
    return max(boxes, key=lambda b: b.area, default=None)


def crop_face(
    grey: np.ndarray, box: FaceBox, size: int = 48, margin: float = FER_MARGIN
) -> np.ndarray:
    """Cut a face out as a size x size uint8 image framed like FER2013.

    The crop is the square around the box's centre, grown by ``margin`` of
    the box size on each side. Where it runs off the frame the edge pixels
    are repeated rather than filled with black: a black band is a strong
    feature the model never saw in training, a smeared edge is not.
    A BGR image is accepted too and turned grey.
    """
    grey = to_grey(grey)
    if grey.dtype != np.uint8:
        raise ValueError(f"crop_face needs a uint8 image, got {grey.dtype}")
    height, width = grey.shape[:2]
    side = max(1, round(max(box.w, box.h) * (1 + 2 * margin)))
    cx, cy = box.center
    x0 = round(cx - side / 2)
    y0 = round(cy - side / 2)
    x1, y1 = x0 + side, y0 + side

    # Part of the square that lies inside the frame, then pad the rest.
    ix0, iy0 = max(0, x0), max(0, y0)
    ix1, iy1 = min(width, x1), min(height, y1)
    if ix1 <= ix0 or iy1 <= iy0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} frame")
    patch = grey[iy0:iy1, ix0:ix1]
    if (ix0, iy0, ix1, iy1) != (x0, y0, x1, y1):
        patch = cv2.copyMakeBorder(
            patch, iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1, cv2.BORDER_REPLICATE
        )
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(patch, (size, size), interpolation=interpolation))
