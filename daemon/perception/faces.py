"""Face finding and FER2013-style face crops.

Detection uses the frontal-face Haar cascade that ships inside the
opencv-python wheel: no model download, a few milliseconds a frame on a
downscaled image, and (usefully) the same kind of detector that was used
to cut the FER2013 faces the emotion model was trained on, so a Haar box
cropped as-is looks like a FER2013 image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ..errors import FaceDetectorError

__all__ = [
    "CASCADE_FILE",
    "FER_MARGIN",
    "FaceBox",
    "FaceDetector",
    "FaceDetectorError",
    "FaceTracker",
    "MultiFaceTracker",
    "TrackedFace",
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
        if min(height, width) < self.min_face:
            return []  # too small to hold a face we would look for (and a zero-size resize would fail)
        scale = min(1.0, self.detect_width / width) if width else 1.0
        if round(height * scale) < 1:
            return []
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


WINDOW = 24            # the frontal cascade's window, px
SCALE_STEP = 1.1       # between cascade scales, as FaceDetector searches
BAND_SCALES = 4        # cascade scales per size band of a spread search
JOB_BUDGET = 80_000    # window positions one search job may visit (~1-2.5 ms on one core here; a face in it costs more)
ROW_OVERLAP = 1.5      # row bands overlap by this many of their largest faces: a face near a band edge is in two


@dataclass(frozen=True)
class SearchJob:
    """One slice of a whole-frame search: faces *lo*..*hi* px wide in rows *y0*..*y1* of the full frame."""

    lo: int
    hi: int
    y0: int
    y1: int


def plan_search(width: int, height: int, min_face: int = 40, budget: int = JOB_BUDGET) -> list[SearchJob]:
    """The whole-frame search at full resolution, cut into jobs of about *budget* window positions.

    The cascade's scales (24 px × 1.1^k, as FaceDetector uses) are taken in bands, largest faces
    first: large faces are cheap to look for, so the first job covers every face from about a
    sixth of the frame up and a performer at the camera is found on the first frame. A band takes
    scales while it stays within *budget* (BAND_SCALES at least), and searches one scale either
    side as well, so a face on a band's edge still collects the neighbouring hits
    ``minNeighbors`` asks for. A band costing more than *budget* is cut into bands of rows that
    overlap by ROW_OVERLAP of its largest face. Nothing is downscaled beyond what the cascade itself does, so
    the jobs together find what a full-resolution search finds.
    """
    windows = []
    k = 0
    while True:
        w = round(WINDOW * SCALE_STEP ** k)
        if w > min(width, height):
            break
        if w >= min_face:
            windows.append(w)
        k += 1

    def cost(first: int, last: int) -> float:  # window positions for scales first..last, one more each side
        return sum(width * height / (w / WINDOW) ** 2 for w in windows[max(0, first - 1):last + 2])

    jobs: list[SearchJob] = []
    last = len(windows) - 1
    while last >= 0:
        first = last
        while first > 0 and (last - first + 1 < BAND_SCALES or cost(first - 1, last) <= budget):
            first -= 1
        lo, hi = windows[max(0, first - 1)], windows[min(len(windows) - 1, last + 1)]
        rows = max(1, math.ceil(cost(first, last) / budget))
        step = height / rows
        for r in range(rows):
            y0 = round(r * step)
            y1 = height if r == rows - 1 else min(height, round((r + 1) * step + ROW_OVERLAP * hi))
            jobs.append(SearchJob(lo, hi, y0, y1))
        last = first - 1
    return jobs


class SpreadSearch:
    """A whole-frame, full-resolution face search spread over frames: one :class:`SearchJob` a call.

    ``step`` searches the next slice of the current frame and returns the faces it found (full-frame
    boxes, largest first); a whole search takes ``len(jobs)`` calls. The plan is made for the frame
    size it first sees (and made again if the size changes).
    """

    # minNeighbors 4, one less than FaceDetector's 5: a slice is sampled on a grid of its own, so a face on
    # the cascade's edge collects a hit or two fewer there; the tracker confirms every slice's face with its
    # local search before following it, which keeps out the extra false faces this lets through.
    def __init__(self, cascade: cv2.CascadeClassifier, min_face: int = 40, budget: int = JOB_BUDGET,
                 min_neighbors: int = 4) -> None:
        self._cascade = cascade
        self.min_face = min_face
        self.budget = budget
        self.min_neighbors = min_neighbors
        self.jobs: list[SearchJob] = []
        self._size: tuple[int, int] | None = None
        self.cursor = 0

    def restart(self) -> None:
        """Begin again with the first job (the largest faces)."""
        self.cursor = 0

    def plan(self, width: int, height: int) -> list[SearchJob]:
        if self._size != (width, height):
            self._size = (width, height)
            self.jobs = plan_search(width, height, self.min_face, self.budget)
            self.cursor = 0
        return self.jobs

    def step(self, grey: np.ndarray, exclude: list[FaceBox] | tuple[FaceBox, ...] = ()) -> list[FaceBox]:
        """Search the next slice of *grey*; faces in *exclude* (grown by a quarter) are blanked out first."""
        height, width = grey.shape[:2]
        jobs = self.plan(width, height)
        if not jobs:
            return []
        job = jobs[self.cursor % len(jobs)]
        self.cursor = (self.cursor + 1) % len(jobs)
        # The whole frame is equalised, as FaceDetector does, so a slice sees the same pixels as a full search.
        band = cv2.equalizeHist(grey)[job.y0:job.y1]
        for box in exclude:
            pad_x, pad_y = box.w // 4, box.h // 4
            x0, x1 = max(0, box.x - pad_x), min(width, box.x + box.w + pad_x)
            y0, y1 = max(0, box.y - pad_y - job.y0), min(band.shape[0], box.y + box.h + pad_y - job.y0)
            if x1 > x0 and y1 > y0:
                band[y0:y1, x0:x1] = 128  # flat: the cascade rejects it at its first stage
        found = self._cascade.detectMultiScale(band, scaleFactor=SCALE_STEP, minNeighbors=self.min_neighbors,
                                               minSize=(job.lo, job.lo), maxSize=(job.hi, job.hi))
        boxes = [FaceBox(int(x), int(y) + job.y0, int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
        boxes.sort(key=lambda b: b.area, reverse=True)
        return boxes


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


class FaceTracker:
    """Finds the performer's face cheaply frame after frame; same ``detect`` as :class:`FaceDetector`.

    No frame pays for a whole-frame search. Once a face is found the tracker searches only a
    square ``search`` times the face's size around it, shrunk so the face is about ``face_px``
    pixels wide, and only for faces 0.7-1.4x the last size: 1-3 ms. When that misses, a wider
    square (twice as wide, faces 0.5-2x) is searched in the same frame. Beside this, a
    full-resolution search of the whole frame (:class:`SpreadSearch`) runs one slice a frame
    while no face is known or the face was missed, and one slice every few frames while
    tracking, so a whole search completes about every ``redetect_every`` frames: it finds a
    face that was lost, and a clearly larger face elsewhere (someone nearer the camera) takes
    over. The tracked face is blanked out of those slices (it is known already; and a face is
    what makes the cascade slow). Faces down to ``min_face`` px are found at full resolution,
    so nothing a full-frame cascade finds is lost to downscaling. A face every search misses is
    kept for ``hold_frames`` frames (Haar misses the odd frame of a turning head) and then
    dropped. Box corners are smoothed against sub-pixel jitter (``jitter``: the share of a
    small move taken each frame; large moves are followed at once).

    detector / detect_width: the plain :class:`FaceDetector` kept as ``full`` (its cascade is
    the one used). detect() returns at most one face: the tracked one (the largest when found
    afresh). ``last_mode`` says what the last call did: "track" (found near the last place),
    "full" (found by the spread search), "hold" or "none".
    """

    def __init__(
        self,
        detector: FaceDetector | None = None,
        *,
        detect_width: int = 320,
        min_face: int = 40,
        face_px: int = 48,
        search: float = 1.8,
        redetect_every: int = 60,
        hold_frames: int = 2,
        jitter: float = 0.5,
    ) -> None:
        if redetect_every < 1:
            raise ValueError(f"redetect_every must be at least 1, got {redetect_every}")
        _set_tracking(self, detector, detect_width, min_face, face_px, search, hold_frames, jitter)
        self.redetect_every = redetect_every
        self.reset()

    def reset(self) -> None:
        """Forget the face: the spread search starts again from its first slice."""
        self._box: tuple[float, float, float, float] | None = None  # smoothed x, y, w, h
        self._frame = 0
        self._misses = 0
        self.spread.restart()
        self.last_mode = "none"

    @property
    def box(self) -> FaceBox | None:
        """The face being tracked, or None."""
        return None if self._box is None else self._as_box(self._box)

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        grey = to_grey(image_bgr)
        height, width = grey.shape[:2]
        self._frame += 1
        found: FaceBox | None = None
        mode = "track"
        if self._box is not None:
            found = self._search_near(grey, self._box, self.search, (0.7, 1.4))
            if found is None:  # a quick move or a step nearer: look wider, still cheaply
                found = self._search_near(grey, self._box, 2 * self.search, (0.5, 2.0))
        if found is None or self._frame % self._slice_every(width, height) == 0:
            other = self._confirmed(grey, self.spread.step(grey, exclude=[found] if found else []))
            if other and (found is None or other.area > 2.0 * found.area):
                found, mode = other, "full"  # a face afresh, or a clearly larger one (someone nearer) takes over
        if found is None:
            self._misses += 1
            if self._box is not None and self._misses <= self.hold_frames:
                self.last_mode = "hold"
                return [self._as_box(self._box)]
            if self._box is not None:
                self.spread.restart()  # lost: search from the largest faces again
            self._box = None
            self.last_mode = "none"
            return []
        self._misses = 0
        self._box = self._smooth(found) if mode == "track" else _as_float(found)
        self.last_mode = mode
        return [self._as_box(self._box, width, height)]

    # --- internals -----------------------------------------------------------

    def _confirmed(self, grey: np.ndarray, boxes: list[FaceBox]) -> FaceBox | None:
        """The first of a slice's *boxes* (largest first) that the local search also finds, as it finds it.

        The hand-off from the spread search to tracking: a box the local search cannot see in the
        same frame (the cascade's odd false face inside a real one, say) would be lost at once.
        """
        for box in boxes:
            seen = self._search_near(grey, _as_float(box), self.search, (0.7, 1.4))
            if seen is not None:
                return seen
        return None

    def _slice_every(self, width: int, height: int) -> int:
        """Frames between slices of the spread search while a face is tracked."""
        return max(1, self.redetect_every // max(1, len(self.spread.plan(width, height))))

    def _search_near(self, grey: np.ndarray, last: tuple[float, float, float, float], search: float,
                     sizes: tuple[float, float]) -> FaceBox | None:
        boxes = search_near(self._cascade, grey, last, self.face_px, search, self.box_scale, sizes)
        return self._pick(boxes, last) if boxes else None

    @staticmethod
    def _pick(boxes: list[FaceBox], last: tuple[float, float, float, float]) -> FaceBox:
        """The box nearest the tracked face (centre distance relative to its size), then the largest."""
        x, y, w, h = last
        cx, cy = x + w / 2, y + h / 2

        def cost(box: FaceBox) -> tuple[float, int]:
            bx, by = box.center
            return (((bx - cx) ** 2 + (by - cy) ** 2) ** 0.5 / max(w, 1.0), -box.area)

        return min(boxes, key=cost)

    def _smooth(self, found: FaceBox) -> tuple[float, float, float, float]:
        return smooth_box(self._box, found, self.jitter)

    @staticmethod
    def _as_box(b: tuple[float, float, float, float], width: int | None = None,
                height: int | None = None) -> FaceBox:
        return as_box(b, width, height)


def _as_float(box: FaceBox) -> tuple[float, float, float, float]:
    return (float(box.x), float(box.y), float(box.w), float(box.h))


Box = tuple[float, float, float, float]  # x, y, w, h in frame pixels, smoothed (so not rounded)


def _set_tracking(tracker: FaceTracker | MultiFaceTracker, detector: FaceDetector | None, detect_width: int,
                  min_face: int, face_px: int, search: float, hold_frames: int, jitter: float) -> None:
    """Check and store the settings both trackers share (see FaceTracker)."""
    if search < 1.2:
        raise ValueError(f"search must be at least 1.2 (times the face), got {search}")
    if face_px < 32:
        raise ValueError(f"face_px must be at least 32 px, got {face_px}")
    tracker.full = detector or FaceDetector(detect_width=detect_width, min_face=min_face)
    tracker._cascade = tracker.full._cascade
    tracker.spread = SpreadSearch(tracker._cascade, min_face=tracker.full.min_face)
    tracker.face_px = face_px
    # The cascade's boxes on a face ~48 px wide come out wider than on the same face at
    # FaceDetector's scale (~100 px): measured 7% (demo clip) to 8.5% (FER faces) at the
    # median. Shrinking them about their centre keeps crops framed as the model was
    # trained, whichever search found the face; without it some faces change class.
    tracker.box_scale = (1 / 1.06) if face_px <= 56 else 1.0
    tracker.search = search
    tracker.hold_frames = hold_frames
    tracker.jitter = jitter


def search_near(cascade: cv2.CascadeClassifier, grey: np.ndarray, last: Box, face_px: int, search: float,
                box_scale: float, sizes: tuple[float, float] = (0.7, 1.4)) -> list[FaceBox]:
    """Faces *sizes* (0.7-1.4x by default) the size of *last* in a square *search* times its size around it.

    The region is shrunk so the face is about *face_px* wide: a few cascade scales over ~90x90
    pixels. Boxes are shrunk by *box_scale* about their centre (see FaceTracker.box_scale).
    """
    height, width = grey.shape[:2]
    x, y, w, h = last
    size = max(w, h)
    side = size * search
    cx, cy = x + w / 2, y + h / 2
    x0, y0 = max(0, int(cx - side / 2)), max(0, int(cy - side / 2))
    x1, y1 = min(width, int(cx + side / 2 + 1)), min(height, int(cy + side / 2 + 1))
    if x1 - x0 < 24 or y1 - y0 < 24:
        return []
    scale = min(1.0, face_px / size)
    region = grey[y0:y1, x0:x1]
    if scale < 1.0:
        region = cv2.resize(region, (max(24, round((x1 - x0) * scale)), max(24, round((y1 - y0) * scale))),
                            interpolation=cv2.INTER_AREA)
    region = cv2.equalizeHist(region)
    face = size * scale
    lo = max(24, int(face * sizes[0]))
    hi = max(lo + 1, int(face * sizes[1]))
    found = cascade.detectMultiScale(region, scaleFactor=1.15, minNeighbors=3, minSize=(lo, lo), maxSize=(hi, hi))
    k = box_scale
    return [
        FaceBox(x0 + round((bx + bw * (1 - k) / 2) / scale), y0 + round((by + bh * (1 - k) / 2) / scale),
                round(bw * k / scale), round(bh * k / scale))
        for bx, by, bw, bh in np.asarray(found).reshape(-1, 4)
    ]


def smooth_box(old: Box | None, found: FaceBox, jitter: float) -> Box:
    """Follow a real move at once; take only the *jitter* share of a small one (sub-pixel flicker)."""
    new = (float(found.x), float(found.y), float(found.w), float(found.h))
    if old is None:
        return new
    size = max(old[2], old[3], 1.0)
    moved = max(abs(a - b) for a, b in zip(new, old))
    if moved > 0.15 * size:
        return new
    return tuple(o + jitter * (n - o) for o, n in zip(old, new))  # type: ignore[return-value]


def as_box(b: Box, width: int | None = None, height: int | None = None) -> FaceBox:
    """A smoothed box rounded to pixels, clipped to the frame when its size is given."""
    x, y, w, h = (round(v) for v in b)
    if width is not None and height is not None:
        x, y = max(0, min(x, width - 1)), max(0, min(y, height - 1))
        w, h = max(1, min(w, width - x)), max(1, min(h, height - y))
    return FaceBox(x, y, w, h)


def centre_distance(box: FaceBox, last: Box) -> float:
    """How far *box*'s centre is from *last*'s, in units of *last*'s width."""
    x, y, w, h = last
    bx, by = box.center
    return ((bx - x - w / 2) ** 2 + (by - y - h / 2) ** 2) ** 0.5 / max(w, 1.0)


@dataclass(frozen=True)
class TrackedFace:
    """A face followed from frame to frame: ``id`` stays the same while it stays in view."""

    id: int
    box: FaceBox
    held: bool = False  # not found in this frame: the box is where it was last seen (see hold_frames)


@dataclass
class _Track:
    id: int
    box: Box
    misses: int = 0


class MultiFaceTracker:
    """Follows up to ``max_faces`` faces at once, each keeping its id while it stays in view.

    The same economy as :class:`FaceTracker`, per face: each known face is looked for near where it
    was (and, missed there, in a square twice as wide); the whole frame is searched at full
    resolution by the same :class:`SpreadSearch`, one slice a frame while a face was missed or
    there is room for another (so someone who walks in is found within a round of slices, about
    11 frames), none while every place is taken: no frame pays for a whole search. The
    faces already found are blanked out of the slices; a slice's face must be seen by the local
    search in the same frame before it is followed. It is matched to a missing face by nearness
    (within ``match`` face widths), else it becomes a new face while there is room. A face missing
    for more than ``hold_frames`` frames running is dropped, and its id never comes back (a face
    that returns is a new face).

    ``update`` returns the faces in id order (oldest first); ``detect`` returns their boxes
    largest first, as :class:`FaceDetector` does. ``last_mode``: "full" when a slice found a face
    this frame, "track" when faces were found near their places only, "hold" or "none".
    """

    def __init__(self, detector: FaceDetector | None = None, *, max_faces: int = 4, detect_width: int = 320,
                 min_face: int = 40, face_px: int = 48, search: float = 1.8,
                 hold_frames: int = 2, jitter: float = 0.5, match: float = 0.6) -> None:
        if max_faces < 1:
            raise ValueError(f"max_faces must be at least 1, got {max_faces}")
        _set_tracking(self, detector, detect_width, min_face, face_px, search, hold_frames, jitter)
        self.max_faces = max_faces
        self.match = match
        self._next_id = 0
        self.reset()

    def reset(self) -> None:
        """Forget every face: the spread search starts again from its first slice (ids are never reused)."""
        self._tracks: list[_Track] = []
        self.spread.restart()
        self.last_mode = "none"

    def detect(self, image_bgr: np.ndarray) -> list[FaceBox]:
        return sorted((face.box for face in self.update(image_bgr)), key=lambda b: b.area, reverse=True)

    def update(self, image_bgr: np.ndarray) -> list[TrackedFace]:
        grey = to_grey(image_bgr)
        height, width = grey.shape[:2]
        found: dict[int, FaceBox] = {}
        for track in self._tracks:
            box = self._near(grey, track.box, self.search, (0.7, 1.4)) or \
                self._near(grey, track.box, 2 * self.search, (0.5, 2.0))
            if box is not None and not any(_overlaps(box, f) for f in found.values()):
                found[track.id] = box
        self.last_mode = "track" if found else "none"
        # While there is room for another face the search goes on a slice a frame (an audience: someone walks
        # in, found within a round of slices), as it does for a missed face; with every place taken, none.
        if len(found) < len(self._tracks) or len(self._tracks) < self.max_faces:
            self._from_spread(grey, found)
        self._apply(found)
        if self.last_mode == "none" and self._tracks:
            self.last_mode = "hold"
        return [TrackedFace(t.id, as_box(t.box, width, height), t.misses > 0) for t in self._tracks]

    def _near(self, grey: np.ndarray, box: Box, search: float, sizes: tuple[float, float]) -> FaceBox | None:
        boxes = search_near(self._cascade, grey, box, self.face_px, search, self.box_scale, sizes)
        return min(boxes, key=lambda b: centre_distance(b, box)) if boxes else None

    def _from_spread(self, grey: np.ndarray, found: dict[int, FaceBox]) -> None:
        """One slice of the whole-frame search: its confirmed faces go to missing faces nearby, else new ones."""
        boxes = []
        for box in self.spread.step(grey, exclude=list(found.values())):  # largest first
            seen = self._near(grey, _as_float(box), self.search, (0.7, 1.4))
            if seen is not None and not any(_overlaps(seen, f) for f in [*found.values(), *boxes]):
                boxes.append(seen)
        if boxes:
            self.last_mode = "full"
        for track in sorted(self._tracks, key=lambda t: t.id):
            if track.id in found or not boxes:
                continue
            nearest = min(boxes, key=lambda b: centre_distance(b, track.box))
            if centre_distance(nearest, track.box) <= self.match:
                found[track.id] = nearest
                boxes.remove(nearest)
        for box in boxes[:max(0, self.max_faces - len(self._tracks))]:
            self._tracks.append(_Track(self._next_id, _as_float(box)))
            found[self._next_id] = box
            self._next_id += 1

    def _apply(self, found: dict[int, FaceBox]) -> None:
        kept = []
        for track in self._tracks:
            if track.id in found:
                track.box, track.misses = smooth_box(track.box, found[track.id], self.jitter), 0
                kept.append(track)
            else:
                track.misses += 1
                if track.misses <= self.hold_frames:  # Haar misses the odd frame of a turning head
                    kept.append(track)
        self._tracks = kept


def _overlaps(a: FaceBox, b: FaceBox) -> bool:
    """Whether the centre of either box lies inside the other (the same face found twice)."""
    (ax, ay), (bx, by) = a.center, b.center
    return (b.x <= ax < b.x + b.w and b.y <= ay < b.y + b.h) or (a.x <= bx < a.x + a.w and a.y <= by < a.y + a.h)
