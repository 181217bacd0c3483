"""Where frames come from: a webcam, a video file or a folder of images.

Every source hands out :class:`Frame` objects with a BGR uint8 picture and a
media time, so the rest of emobridge never needs to know which one it has.
Files are read as fast as they decode; :func:`paced` plays them back at the
speed they were recorded, so a clip drives the music like a live camera.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import stat
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..stderr import quiet_stderr
from ..errors import SourceError

__all__ = [
    "IMAGE_EXTENSIONS",
    "CameraSource",
    "Frame",
    "FrameListSource",
    "FrameSource",
    "ImageFolderSource",
    "SourceError",
    "VideoFileSource",
    "CameraInfo",
    "camera_names",
    "list_cameras",
    "open_source",
    "paced",
    "resolve_camera",
    "resolve_camera_name",
    "to_bgr",
]

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pnm"}
)

# FFmpeg prints a line for every damaged frame it decodes ("[mjpeg @ 0x...] bad vlc"), straight to
# the terminal, mid-show; emobridge skips such frames itself. Set the variable to see FFmpeg's messages.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read when a capture opens

# Used when a file claims no (or an absurd) frame rate.
DEFAULT_FPS = 30.0

# Where Linux lists its V4L2 devices, each with the name its driver gives it.
V4L2_SYSFS = Path("/sys/class/video4linux")


@dataclass(frozen=True)
class Frame:
    """One picture and when it was taken.

    image: BGR uint8, height x width x 3, whatever the source delivered.
    time: media time in seconds: position in the file, or monotonic seconds
        since a camera was opened. It keeps rising when a file loops.
    index: 0, 1, 2, ... in delivery order (also keeps rising when looping).
    """

    image: np.ndarray
    time: float
    index: int


def to_bgr(image: np.ndarray) -> np.ndarray:
    """Turn grey, 16-bit, float or alpha images into BGR uint8 (H x W x 3).

    The detector and the preview expect one layout; image files in the wild
    come in all of these.
    """
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype.kind == "f":
        # Float images (TIFF/EXR) are 0..1 by convention.
        image = (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)

    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return np.ascontiguousarray(image)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels in (1, 2):  # grey, or grey + alpha
        return cv2.cvtColor(np.ascontiguousarray(image[:, :, 0]), cv2.COLOR_GRAY2BGR)
    raise ValueError(f"cannot show a {channels}-channel image as BGR")


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own stderr warnings while probing a device or file.

    A missing camera makes OpenCV print several [WARN] lines; we raise one
    clear SourceError instead, so those lines would only be noise.
    """
    logging_api = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_api is None:
        with quiet_stderr():
            yield
        return
    previous = logging_api.getLogLevel()
    logging_api.setLogLevel(logging_api.LOG_LEVEL_SILENT)
    try:
        with quiet_stderr():  # FFmpeg's own messages bypass OpenCV's logger
            yield
    finally:
        logging_api.setLogLevel(previous)


def _sane_fps(value: float) -> bool:
    return value == value and 0.5 <= value <= 1000.0  # value == value: not NaN


class FrameSource(ABC):
    """Something that hands out frames one at a time.

    fps: the nominal frame rate. name: for messages ("camera 0", a file path).
    live: True for cameras, whose frames are real time already and must never
    be delayed.
    """

    fps: float = DEFAULT_FPS
    name: str = ""
    live: bool = False

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, or None at the end of a file or folder."""

    def close(self) -> None:
        """Release the device or file. Safe to call more than once."""

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} fps={self.fps:g}>"


class CameraSource(FrameSource):
    """A webcam by index (0, 1, ...), device path (/dev/video2) or name (Linux).

    A name ("C920", "HD Pro Webcam C920") is looked up with :func:`resolve_camera`;
    of the nodes that carry it, the first that gives a picture is used (a
    webcam's metadata node has the same name but no picture).
    size and fps are requests: the driver picks the nearest mode it has, and
    ``fps`` afterwards says what it reports.
    sysfs_root: where Linux lists its cameras (tests point it at a fake tree).
    """

    live = True
    # Consecutive failed grabs before we call the camera gone. USB cameras
    # drop the odd frame; a run of failures means it was unplugged or seized.
    MAX_MISSES = 5

    def __init__(
        self,
        camera: int | str = 0,
        size: tuple[int, int] | None = None,
        fps: float | None = None,
        sysfs_root: Path = V4L2_SYSFS,
    ) -> None:
        if isinstance(camera, str) and camera.strip().isdigit():
            camera = int(camera)  # "0" from a command line means index 0
        self.camera = camera
        self.name = f"camera {camera}"
        self._index = 0
        self._misses = 0
        self._cap: cv2.VideoCapture | None = None
        names = camera_names(sysfs_root) if _is_camera_name(camera) else {}
        first_error: SourceError | None = None
        for candidate in resolve_camera(camera, sysfs_root=sysfs_root):
            # Name the node in messages, so a user with two same-named cameras sees which one.
            label = f'camera "{names[candidate]}" ({candidate})' if candidate in names else f"camera {candidate}"
            try:
                self._cap, image = self._open(candidate, label, size, fps)
            except SourceError as error:
                first_error = first_error or error  # the lowest node is the likely webcam: its reason counts
                continue
            self.name = label
            break
        if self._cap is None:
            raise first_error or SourceError(f"{self.name} could not be opened")
        self._t0 = time.monotonic()
        self._first: np.ndarray | None = image
        reported = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = reported if _sane_fps(reported) else float(fps or DEFAULT_FPS)

    @staticmethod
    def _open(
        camera: int | str, label: str, size: tuple[int, int] | None, fps: float | None
    ) -> tuple[cv2.VideoCapture, np.ndarray]:
        """Open one device and read its first picture, or raise a SourceError naming ``label``."""
        with _quiet_opencv():
            if isinstance(camera, str) and sys.platform.startswith("linux"):
                # A device path: ask V4L2 directly, or OpenCV also tries it
                # as a file through FFmpeg, which prints its own error.
                cap = cv2.VideoCapture(camera, cv2.CAP_V4L2)
            else:
                cap = cv2.VideoCapture(camera)
            if not cap.isOpened():
                cap.release()
                raise SourceError(
                    f"{label} could not be opened: check it is plugged in and not used "
                    "by another app, or use --video FILE"
                )
            if size is not None:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(size[0]))
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(size[1]))
            if fps is not None:
                cap.set(cv2.CAP_PROP_FPS, float(fps))
            # Some device nodes open but never give a picture (e.g. the
            # metadata node beside each real webcam on Linux); find out now.
            ok, image = cap.read()
        if not ok or image is None:
            cap.release()
            raise SourceError(
                f"{label} opened but gives no picture: it may be a metadata node or "
                "in use elsewhere; try another camera index, or use --video FILE"
            )
        return cap, image

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"{self.name} is closed")
        if self._first is not None:
            image, self._first = self._first, None
        else:
            image = None
            while image is None:
                ok, image = self._cap.read()
                if ok and image is not None:
                    break
                image = None
                self._misses += 1
                if self._misses >= self.MAX_MISSES:
                    raise SourceError(
                        f"{self.name} stopped delivering frames: check the cable and that no "
                        "other app took it, then restart"
                    )
            self._misses = 0
        frame = Frame(to_bgr(image), time.monotonic() - self._t0, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _not_a_video_file(path: Path) -> str | None:
    """What is wrong with *path* as a video file, from its stat alone (nothing is opened); None: a regular file."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "is a symlink loop (its links lead back to themselves): check the path"
        return "not found: check the path"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory, not a video file: give a video file, or --images for a folder of pictures"
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    kind = next((words for test, words in kinds if test(mode)), "not a regular file")
    return f"is {kind}, not a video file: give a video file (for a camera, --camera)"


class VideoFileSource(FrameSource):
    """Frames of a video file, with times from its frame rate.

    loop: start again at the end instead of returning None; frame times and
        indices keep rising so pacing and smoothing see a continuous stream.
    fps: overrides the file's frame rate (for files that report a wrong one).
    """

    def __init__(self, path: str | Path, loop: bool = False, fps: float | None = None) -> None:
        self.path = Path(path)
        self.name = str(path)
        self.loop = loop
        self._index = 0  # frames delivered
        problem = _not_a_video_file(self.path)
        if problem:
            raise SourceError(f"video file {self.name} {problem}")
        self._cap = self._open()
        ok, image = self._cap.read()
        if not ok or image is None:
            self._cap.release()
            raise SourceError(
                f"video file {self.name} has no readable frames: it is empty, damaged or "
                "in a codec this OpenCV cannot decode; re-encode it, e.g. "
                "ffmpeg -i IN -c:v mjpeg -q:v 3 OUT.avi"
            )
        self._first: np.ndarray | None = image
        if fps is not None:
            if not _sane_fps(fps):
                raise ValueError(f"fps must be between 0.5 and 1000, got {fps}")
            self.fps = float(fps)
        else:
            reported = self._cap.get(cv2.CAP_PROP_FPS)
            if _sane_fps(reported):
                self.fps = float(reported)
            else:
                log.warning("%s reports no usable frame rate (%r); assuming %g fps",
                            self.name, reported, DEFAULT_FPS)
                self.fps = DEFAULT_FPS
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if count > 0 else None

    def _open(self) -> cv2.VideoCapture:
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise SourceError(
                f"video file {self.name} could not be opened: it is empty, damaged or in a "
                "format this OpenCV cannot read; re-encode it, e.g. "
                "ffmpeg -i IN -c:v mjpeg -q:v 3 OUT.avi"
            )
        return cap

    @property
    def duration(self) -> float | None:
        """Length of one pass in seconds, if the file says how many frames it has."""
        return None if self.frame_count is None else self.frame_count / self.fps

    def read(self) -> Frame | None:
        if self._cap is None:
            raise SourceError(f"video file {self.name} is closed")
        if self._first is not None:
            image, self._first = self._first, None
        else:
            ok, image = self._cap.read()
            if not ok or image is None:
                if not self.loop:
                    return None
                # Seeking to 0 is unreliable for some containers; reopening is not.
                self._cap.release()
                self._cap = self._open()
                ok, image = self._cap.read()
                if not ok or image is None:
                    raise SourceError(f"video file {self.name} could not be read again to loop")
        frame = Frame(to_bgr(image), self._index / self.fps, self._index)
        self._index += 1
        return frame

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def _natural_key(path: Path) -> list[object]:
    # frame2.png before frame10.png, as a person numbering files expects.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _read_image(path: Path) -> np.ndarray | None:
    # np.fromfile + imdecode instead of imread: imread cannot open non-ASCII
    # paths on Windows, and never raises, only returns None.
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    with _quiet_opencv():
        try:
            return cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
        except cv2.error:  # e.g. a header claiming more pixels than OpenCV allows
            return None


class ImageFolderSource(FrameSource):
    """The images in a folder, in natural name order, shown at ``fps``.

    Files that cannot be decoded are skipped with a logged warning (each
    once), so one bad file does not stop a performance.
    """

    def __init__(self, folder: str | Path, fps: float = 10.0, loop: bool = False) -> None:
        if not _sane_fps(fps):
            raise ValueError(f"fps must be between 0.5 and 1000, got {fps}")
        self.folder = Path(folder)
        self.name = str(folder)
        self.fps = float(fps)
        self.loop = loop
        if not self.folder.is_dir():
            raise SourceError(f"image folder {self.name} not found: check the path")
        self.files = sorted(
            (p for p in self.folder.iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
            key=_natural_key,
        )
        if not self.files:
            raise SourceError(
                f"image folder {self.name} has no images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}): check the path"
            )
        self._position = 0  # next file to try
        self._index = 0  # frames delivered
        self._read_this_pass = 0
        self._bad: set[Path] = set()
        self._closed = False
        # Refuse a folder of unreadable files now, before the show starts, not at the first frame.
        if not any(_read_image(p) is not None for p in self.files):
            raise SourceError(f"none of the {len(self.files)} images in {self.name} could be read: check they are valid image files")

    def read(self) -> Frame | None:
        if self._closed:
            raise SourceError(f"image folder {self.name} is closed")
        while True:
            if self._position >= len(self.files):
                if self._read_this_pass == 0:
                    raise SourceError(
                        f"none of the {len(self.files)} images in {self.name} could be read: "
                        "check they are valid image files"
                    )
                if not self.loop:
                    return None
                self._position = 0
                self._read_this_pass = 0
            path = self.files[self._position]
            self._position += 1
            if path in self._bad:
                continue
            image = _read_image(path)
            if image is None:
                self._bad.add(path)
                log.warning("skipping %s: not a readable image", path)
                continue
            self._read_this_pass += 1
            frame = Frame(to_bgr(image), self._index / self.fps, self._index)
            self._index += 1
            return frame

    def close(self) -> None:
        self._closed = True


class FrameListSource(FrameSource):
    """Pictures held in memory, shown at *fps*: the fake camera of in-process tests and benchmarks.

    It behaves as a file does (media times i / fps, ``None`` at the end unless *loop*), and can
    fail as a camera does: with *fail_after* it raises :class:`SourceError` instead of the frame
    of that index, as an unplugged camera would.
    """

    def __init__(self, images: list[np.ndarray], fps: float = 10.0, loop: bool = False, name: str = "frames",
                 fail_after: int | None = None) -> None:
        if not images:
            raise ValueError("a frame list needs at least one picture")
        self.images = [to_bgr(image) for image in images]
        self.fps = float(fps)
        self.loop = loop
        self.name = name
        self.fail_after = fail_after
        self._index = 0

    def read(self) -> Frame | None:
        if self.fail_after is not None and self._index >= self.fail_after:
            raise SourceError(f"{self.name} stopped giving frames")
        if self._index >= len(self.images) and not self.loop:
            return None
        frame = Frame(self.images[self._index % len(self.images)], self._index / self.fps, self._index)
        self._index += 1
        return frame


def open_source(
    *,
    camera: int | str | None = None,
    video: str | Path | None = None,
    images: str | Path | None = None,
    loop: bool = False,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
) -> FrameSource:
    """Open whichever source was asked for; camera 0 if none was.

    fps: requested camera rate, the rate to show an image folder at
        (default 10), or an override for a video file's own rate.
    size: requested camera (width, height); files keep their own size.
    loop: repeat a file or folder forever.
    """
    chosen = [name for name, value in (("camera", camera), ("video", video), ("images", images))
              if value is not None]
    if len(chosen) > 1:
        raise ValueError(f"choose one frame source, not {' and '.join(chosen)}")
    if video is not None:
        return VideoFileSource(video, loop=loop, fps=fps)
    if images is not None:
        return ImageFolderSource(images, fps=10.0 if fps is None else fps, loop=loop)
    return CameraSource(0 if camera is None else camera, size=size, fps=fps)


def paced(
    source: FrameSource,
    fast: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_lag: float = 0.5,
) -> Iterator[Frame]:
    """Yield a source's frames at the moment their media time comes round.

    Files then drive the music at the speed they were recorded. Cameras are
    real time already and are never delayed; ``fast=True`` skips waiting
    for files too (batch runs, tests).

    If the consumer falls more than ``max_lag`` seconds behind (a slow
    machine), the schedule is moved on rather than rushing through the
    backlog, so playback stays smooth instead of bursting.
    """
    no_wait = fast or source.live
    anchor: float | None = None  # clock time at which media time 0 is due
    while (frame := source.read()) is not None:
        if not no_wait:
            now = clock()
            if anchor is None:
                anchor = now - frame.time
            due = anchor + frame.time
            if due > now:
                sleep(due - now)
            elif now - due > max_lag:
                anchor = now - frame.time
        yield frame


# ------------------------------------------------------------ camera names

def _is_camera_name(camera: int | str) -> bool:
    """True for "C920", False for 0, "0", "/dev/video2" or an existing file.

    Anything with a slash counts as a path (or URL), so a device that is not
    there now still gets "could not be opened" rather than "no camera named".
    """
    if not isinstance(camera, str):
        return False
    text = camera.strip()
    return bool(text) and not text.isdigit() and not any(c in text for c in "/\\") and not Path(text).exists()


def _quoted(names: list[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def camera_names(sysfs_root: Path = V4L2_SYSFS) -> dict[str, str]:
    """Each V4L2 device path and the name its driver gives it, in node order.

    {"/dev/video0": "HD Pro Webcam C920", "/dev/video1": "HD Pro Webcam C920", ...};
    empty where there is no such folder (macOS, Windows, a machine without cameras).
    """
    try:
        nodes = sorted(sysfs_root.glob("video*"), key=_natural_key)
    except OSError:
        return {}
    names: dict[str, str] = {}
    for node in nodes:
        try:
            name = (node / "name").read_text(encoding="utf-8", errors="replace").strip()
        except OSError:  # a node unplugged while we look
            continue
        if name:
            names[f"/dev/{node.name}"] = name
    return names


def resolve_camera_name(name: str, sysfs_root: Path = V4L2_SYSFS) -> list[str]:
    """The device paths of the camera called ``name``, lowest node first.

    Case-insensitive: an exact name wins; otherwise the name must be part of
    exactly one camera's name. A webcam often has two nodes with one name
    (picture and metadata); all are returned, for the caller to try in order.
    Raises SourceError when no camera, or more than one, fits.
    """
    nodes = camera_names(sysfs_root)
    wanted = name.strip().casefold()
    exact = [path for path, found in nodes.items() if found.casefold() == wanted]
    if exact:
        return exact
    fits = list(dict.fromkeys(found for found in nodes.values() if wanted and wanted in found.casefold()))
    if len(fits) == 1:
        return [path for path, found in nodes.items() if found == fits[0]]
    if fits:
        raise SourceError(
            f'camera name "{name}" fits several cameras ({_quoted(fits)}): give more of the name, '
            "or an index from 'emobridge cameras'"
        )
    known = list(dict.fromkeys(nodes.values()))
    there = f"cameras here: {_quoted(known)}" if known else "no cameras found"
    raise SourceError(f"no camera named \"{name}\" ({there}): see 'emobridge cameras'")


def resolve_camera(
    camera: int | str, platform: str = sys.platform, sysfs_root: Path = V4L2_SYSFS
) -> list[int | str]:
    """What to try opening for ``--camera``: the index or path itself, or the nodes a name resolves to."""
    if not _is_camera_name(camera):
        return [camera]
    if not platform.startswith("linux"):
        # OpenCV on macOS and Windows opens cameras by index only and cannot tell their names.
        raise SourceError(
            f'camera names like "{camera}" work only on Linux: use an index from \'emobridge cameras\' '
            "(e.g. --camera 0)"
        )
    return list(resolve_camera_name(str(camera), sysfs_root))


@dataclass(frozen=True)
class CameraInfo:
    """A camera that opened and gave a picture: what to pass to ``--camera``, and its mode."""

    camera: int | str   # index, or device path where there is one (Linux)
    width: int
    height: int
    fps: float
    path: str | None = None  # /dev/videoN on Linux
    name: str | None = None  # what the driver calls it (Linux), also accepted by --camera

    def describe(self) -> str:
        details = []
        if self.path and self.path != self.camera:
            details.append(self.path)
        if self.name:
            details.append(f'"{self.name}"')
        where = f" ({', '.join(details)})" if details else ""
        return f"--camera {self.camera}{where}: {self.width}x{self.height} at {self.fps:g} fps"


def list_cameras(max_index: int = 10, sysfs_root: Path = V4L2_SYSFS) -> list[CameraInfo]:
    """The cameras that can be opened and give a picture now, quietly.

    On Linux every /dev/video* node is tried (the metadata nodes beside real webcams open
    but give no picture, so they are left out) and named from sysfs; elsewhere indices
    0..max_index-1. A camera another app holds cannot be opened, so it is not listed.
    """
    found: list[CameraInfo] = []
    names: dict[str, str] = {}
    if sys.platform.startswith("linux"):
        nodes = sorted(Path("/dev").glob("video*"), key=_natural_key)
        candidates: list[int | str] = [str(node) for node in nodes]
        names = camera_names(sysfs_root)
    else:
        candidates = list(range(max_index))
    for candidate in candidates:
        try:
            with CameraSource(candidate) as cam:
                frame = cam.read()
                height, width = frame.image.shape[:2] if frame is not None else (0, 0)
                fps = cam.fps
        except (SourceError, OSError, cv2.error):
            continue
        path = candidate if isinstance(candidate, str) else None
        index = int(path[len("/dev/video"):]) if path and path[len("/dev/video"):].isdigit() else candidate
        found.append(CameraInfo(index, width, height, float(fps), path, names.get(path or "")))
    return found
