"""Frame sources: files, folders, cameras that are not there, pacing."""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from emobridge.demo import demo_clip_path
from emobridge.perception.sources import CameraInfo, CameraSource, Frame, FrameSource, ImageFolderSource, VideoFileSource, camera_names, open_source, paced, resolve_camera, resolve_camera_name, to_bgr
from emobridge.errors import SourceError

SIZE = (64, 48)  # width, height: tiny, so tests stay fast


def write_video(path: Path, frames: int, fps: float = 10.0, size: tuple[int, int] = SIZE) -> Path:
    """An MJPG .avi whose frame i is a flat grey of level 20 * i (so order can be checked)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 20 * i % 256, np.uint8))
    writer.release()
    return path


def level(frame: Frame) -> float:
    return float(frame.image.mean())


# ------------------------------------------------------------------ video files

def test_video_frames_times_and_end(tmp_path):
    path = write_video(tmp_path / "clip.avi", 5, fps=10)
    with VideoFileSource(path) as src:
        assert src.fps == pytest.approx(10)
        assert not src.live
        assert src.name == str(path)
        frames = list(src)
        assert src.read() is None  # still the end
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert [f.time for f in frames] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    for i, f in enumerate(frames):
        assert f.image.dtype == np.uint8 and f.image.shape == (48, 64, 3)
        assert level(f) == pytest.approx(20 * i, abs=3)


def test_video_loop_keeps_time_rising(tmp_path):
    path = write_video(tmp_path / "clip.avi", 4, fps=10)
    with VideoFileSource(path, loop=True) as src:
        frames = [src.read() for _ in range(10)]
    assert [f.index for f in frames] == list(range(10))
    assert np.all(np.diff([f.time for f in frames]) > 0)
    assert level(frames[4]) == pytest.approx(level(frames[0]), abs=3)  # back to the start
    assert level(frames[9]) == pytest.approx(level(frames[1]), abs=3)


def test_video_fps_override(tmp_path):
    path = write_video(tmp_path / "clip.avi", 3, fps=10)
    with VideoFileSource(path, fps=25) as src:
        assert src.fps == 25
        assert [f.time for f in src] == pytest.approx([0, 0.04, 0.08])


def test_missing_video(tmp_path):
    with pytest.raises(SourceError, match="not found") as err:
        VideoFileSource(tmp_path / "nope.mp4")
    assert "nope.mp4" in str(err.value)


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00junk" + bytes(range(256)) * 20])
def test_empty_or_corrupt_video(tmp_path, content):
    path = tmp_path / "broken.avi"
    path.write_bytes(content)
    with pytest.raises(SourceError) as err:
        VideoFileSource(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    assert "ffmpeg" in message  # says how to fix it


def test_closed_source_says_so(tmp_path):
    src = VideoFileSource(write_video(tmp_path / "clip.avi", 2))
    src.close()
    src.close()  # twice is fine
    with pytest.raises(SourceError, match="closed"):
        src.read()


# --------------------------------------------------------------- image folders

def _png(path: Path, image: np.ndarray) -> None:
    assert cv2.imwrite(str(path), image)


def test_image_folder_formats_order_and_bad_file(tmp_path, caplog):
    _png(tmp_path / "frame10.png", np.full((20, 30, 3), 200, np.uint8))          # BGR
    _png(tmp_path / "frame2.png", np.full((20, 30), 50, np.uint8))               # grey
    _png(tmp_path / "frame3.png", np.full((20, 30), 100 * 256, np.uint16))       # 16-bit grey
    _png(tmp_path / "frame4.png", np.full((20, 30, 4), 150, np.uint8))           # with alpha
    _png(tmp_path / "frame5.png", np.full((20, 30, 3), 65535, np.uint16))        # 16-bit colour
    (tmp_path / "frame6.png").write_bytes(b"\x89PNG not really")                 # unreadable
    (tmp_path / "notes.txt").write_text("not an image")                          # ignored
    with caplog.at_level(logging.WARNING, logger="emobridge.perception.sources"):
        with ImageFolderSource(tmp_path, fps=5) as src:
            assert [p.name for p in src.files][:2] == ["frame2.png", "frame3.png"]  # natural order
            frames = list(src)
    assert [round(level(f)) for f in frames] == [50, 100, 150, 255, 200]
    assert [f.time for f in frames] == pytest.approx([0, 0.2, 0.4, 0.6, 0.8])
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.shape == (20, 30, 3)
    assert "frame6.png" in caplog.text


def test_image_folder_loop_warns_once(tmp_path, caplog):
    _png(tmp_path / "a.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"")
    with caplog.at_level(logging.WARNING, logger="emobridge.perception.sources"):
        with ImageFolderSource(tmp_path, loop=True) as src:
            frames = [src.read() for _ in range(3)]
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.time for f in frames] == pytest.approx([0, 0.1, 0.2])
    assert caplog.text.count("b.jpg") == 1


def test_image_folder_errors(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        ImageFolderSource(tmp_path / "missing")
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path)
    (tmp_path / "x.png").write_bytes(b"junk")
    with pytest.raises(SourceError, match="none of the 1 images"):
        ImageFolderSource(tmp_path).read()


def test_to_bgr_conversions():
    assert to_bgr(np.full((2, 2), 0.5, np.float32))[0, 0].tolist() == [128, 128, 128]
    assert to_bgr(np.full((2, 2, 1), 7, np.uint8)).shape == (2, 2, 3)
    assert to_bgr(np.full((2, 2, 2), 9, np.uint8))[0, 0].tolist() == [9, 9, 9]


# -------------------------------------------------------------------- cameras

@pytest.mark.parametrize("camera", [99, "99", "/dev/video99"])
def test_missing_camera_is_one_clear_line(camera):
    with pytest.raises(SourceError) as err:
        CameraSource(camera)
    message = str(err.value)
    assert message.startswith("camera 99 could not be opened") or message.startswith(
        "camera /dev/video99 could not be opened"
    )
    assert "--video FILE" in message and "\n" not in message


def test_open_source_camera_failure_is_source_error():
    with pytest.raises(SourceError, match="camera 99"):
        open_source(camera=99)


def test_open_source_picks_one(tmp_path):
    video = write_video(tmp_path / "clip.avi", 2)
    _png(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with open_source(video=video) as src:
        assert isinstance(src, VideoFileSource)
    with open_source(images=tmp_path) as src:
        assert isinstance(src, ImageFolderSource) and src.fps == 10
    with open_source(images=tmp_path, fps=4, loop=True) as src:
        assert src.fps == 4 and src.loop
    with pytest.raises(ValueError, match="video and images"):
        open_source(video=video, images=tmp_path)


def test_open_source_images_fps_sets_frame_times(tmp_path):
    # What `emobridge run --images DIR --fps 20` plays: one image every 1/20 s of media time.
    for i in range(4):
        _png(tmp_path / f"f{i}.png", np.full((8, 8), 40 * i, np.uint8))
    with open_source(images=tmp_path, fps=20) as src:
        times = [frame.time for frame in src]
    assert times == pytest.approx([0.0, 0.05, 0.10, 0.15])


# ---------------------------------------------------------------- camera names

def fake_sysfs(root: Path, names: dict[str, str]) -> Path:
    """A /sys/class/video4linux look-alike: root/videoN/name holding each driver's name."""
    root.mkdir()
    for node, name in names.items():
        (root / node).mkdir()
        (root / node / "name").write_text(name + "\n")
    return root


WEBCAMS = {
    "video10": "USB Camera A",
    "video0": "HD Pro Webcam C920",
    "video1": "HD Pro Webcam C920",  # the C920's metadata node: same name, no picture
    "video2": "USB Camera A",
    "video3": "USB Camera B",
}


def test_camera_names_in_node_order(tmp_path):
    names = camera_names(fake_sysfs(tmp_path / "v4l", WEBCAMS))
    assert list(names) == ["/dev/video0", "/dev/video1", "/dev/video2", "/dev/video3", "/dev/video10"]
    assert names["/dev/video0"] == "HD Pro Webcam C920"
    assert camera_names(tmp_path / "absent") == {}


@pytest.mark.parametrize("name, nodes", [
    ("HD Pro Webcam C920", ["/dev/video0", "/dev/video1"]),  # exact: every node, lowest first
    ("usb camera a", ["/dev/video2", "/dev/video10"]),       # any case; natural order, not video10 first
    ("c920", ["/dev/video0", "/dev/video1"]),                # part of exactly one camera's name
    ("  Camera B ", ["/dev/video3"]),
])
def test_resolve_camera_name(tmp_path, name, nodes):
    assert resolve_camera_name(name, fake_sysfs(tmp_path / "v4l", WEBCAMS)) == nodes


def test_exact_name_beats_a_longer_one_containing_it(tmp_path):
    root = fake_sysfs(tmp_path / "v4l", {"video0": "Cam Pro", "video4": "Cam"})
    assert resolve_camera_name("cam", root) == ["/dev/video4"]


def test_ambiguous_camera_name_lists_the_candidates(tmp_path):
    with pytest.raises(SourceError) as err:
        resolve_camera_name("usb camera", fake_sysfs(tmp_path / "v4l", WEBCAMS))
    message = str(err.value)
    assert '"USB Camera A", "USB Camera B"' in message and "emobridge cameras" in message
    assert "\n" not in message


def test_unknown_camera_name_lists_the_names_there(tmp_path):
    with pytest.raises(SourceError) as err:
        resolve_camera_name("No Such Cam", fake_sysfs(tmp_path / "v4l", WEBCAMS))
    assert str(err.value) == (
        'no camera named "No Such Cam" (cameras here: "HD Pro Webcam C920", "USB Camera A", "USB Camera B"): '
        "see 'emobridge cameras'"
    )


def test_unknown_camera_name_without_any_camera(tmp_path):
    for root in (tmp_path / "absent", fake_sysfs(tmp_path / "empty", {})):
        with pytest.raises(SourceError, match=r'no camera named "C920" \(no cameras found\)'):
            resolve_camera_name("C920", root)


def test_resolve_camera_passes_indices_and_paths_through(tmp_path):
    root = fake_sysfs(tmp_path / "v4l", WEBCAMS)
    assert resolve_camera(2, sysfs_root=root) == [2]
    assert resolve_camera("/dev/video99", sysfs_root=root) == ["/dev/video99"]  # absent, but a path
    assert resolve_camera("C920", platform="linux", sysfs_root=root) == ["/dev/video0", "/dev/video1"]


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_camera_name_elsewhere_asks_for_an_index(tmp_path, platform):
    with pytest.raises(SourceError) as err:
        resolve_camera("C920", platform=platform, sysfs_root=fake_sysfs(tmp_path / "v4l", WEBCAMS))
    assert "only on Linux" in str(err.value) and "emobridge cameras" in str(err.value)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="camera names are read from Linux sysfs")
def test_camera_name_whose_nodes_do_not_open_names_the_first(tmp_path):
    # Real OpenCV on nodes that sysfs lists but /dev lacks: every one is tried, the first reason is given.
    root = fake_sysfs(tmp_path / "v4l", {"video98": "Ghost Cam", "video99": "Ghost Cam"})
    with pytest.raises(SourceError) as err:
        CameraSource("ghost", sysfs_root=root)
    assert str(err.value).startswith('camera "Ghost Cam" (/dev/video98) could not be opened')


def test_camera_info_shows_the_name():
    c920 = CameraInfo(0, 640, 480, 30.0, "/dev/video0", "HD Pro Webcam C920")
    assert c920.describe() == '--camera 0 (/dev/video0, "HD Pro Webcam C920"): 640x480 at 30 fps'
    assert CameraInfo(1, 1280, 720, 29.97).describe() == "--camera 1: 1280x720 at 29.97 fps"


# -------------------------------------------------------------------- pacing

class FakeClock:
    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class ListSource(FrameSource):
    def __init__(self, times: list[float], live: bool = False) -> None:
        self.frames = [Frame(np.zeros((2, 2, 3), np.uint8), t, i) for i, t in enumerate(times)]
        self.live = live
        self.name = "list"

    def read(self) -> Frame | None:
        return self.frames.pop(0) if self.frames else None


def test_paced_yields_at_media_time():
    clock = FakeClock()
    yielded = [(f.time, clock()) for f in paced(ListSource([0, 0.1, 0.2, 0.5]), clock=clock, sleep=clock.sleep)]
    assert [at - 100.0 for _, at in yielded] == pytest.approx([0, 0.1, 0.2, 0.5])


def test_paced_fast_and_live_never_wait():
    for kwargs, live in (({"fast": True}, False), ({}, True)):
        clock = FakeClock()
        frames = list(paced(ListSource([0, 1, 2], live=live), clock=clock, sleep=clock.sleep, **kwargs))
        assert len(frames) == 3 and clock.sleeps == []


def test_paced_slow_consumer_does_not_burst():
    clock = FakeClock()
    gaps = []
    last = None
    for frame in paced(ListSource([i / 10 for i in range(8)]), clock=clock, sleep=clock.sleep):
        if last is not None:
            gaps.append(clock() - last)
        if frame.index == 2:
            clock.now += 2.0  # the consumer stalls for 2 s
        last = clock()
    # After the stall the schedule restarts: frames are again 0.1 s apart, not all at once.
    assert gaps[3:] == pytest.approx([0.1] * 4)


def test_paced_real_time(tmp_path):
    path = write_video(tmp_path / "clip.avi", 6, fps=20)
    with VideoFileSource(path) as src:
        start = time.monotonic()
        frames = list(paced(src))
        elapsed = time.monotonic() - start
    assert len(frames) == 6
    assert 0.2 <= elapsed < 1.5  # 5 frame intervals of 50 ms


# ------------------------------------------------------------------ demo clip

def test_demo_clip_plays():
    path = demo_clip_path()
    assert path.is_file() and path.stat().st_size < 3_000_000
    with open_source(video=path) as src:
        assert src.fps == pytest.approx(15)
        assert src.duration is not None and 20 <= src.duration <= 40
        first = src.read()
        assert first.image.shape == (480, 640, 3)
