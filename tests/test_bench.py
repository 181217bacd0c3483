"""emobridge bench: every figure is there and sane (no timing thresholds: machines differ)."""

from __future__ import annotations

import argparse
import json
import sys

import cv2
import numpy as np
import pytest

from emobridge.errors import DatasetError, SourceError
from emobridge.tools.bench import add_arguments, format_bench, run, run_bench
from emobridge.demo import demo_clip_path
from emobridge.perception import sources
from emobridge.perception.chain import STAGES
from emobridge.perception.sources import CameraInfo, VideoFileSource, list_cameras

ALL_STAGES = ("decode", *STAGES)


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    """The first 12 frames of the demo clip as an MJPG file."""
    path = tmp_path_factory.mktemp("bench") / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (640, 480))
    with VideoFileSource(demo_clip_path()) as src:
        for frame in src:
            if frame.index >= 12:
                break
            writer.write(frame.image)
    writer.release()
    return path


@pytest.fixture(scope="module")
def result(short_clip):
    return run_bench(short_clip, frames=None, baseline_frames=3, steadiness=False, warmup=2)


def test_bench_reports_every_stage_for_ours_and_the_naive_chain(result):
    assert result["frame_size"] == [640, 480]
    assert result["chain"]["frames"] == 10 and result["naive"]["frames"] == 3
    for chain in (result["chain"], result["naive"]):
        assert set(chain["stages"]) == set(ALL_STAGES)
        for stats in [*chain["stages"].values(), chain["perception"], chain["total"]]:
            assert 0 <= stats["median_ms"] <= stats["p95_ms"] < 10_000
        assert chain["perception"]["fps"] > 0 and chain["perception"]["cpu_ms"] >= 0
        assert chain["total"]["median_ms"] >= chain["perception"]["median_ms"] * 0.5
        assert chain["face_found"] == 1.0
    assert result["speedup"] > 0
    assert set(result["targets"]) == {"median_ms", "p95_ms", "mean_ms", "met", "face_found"}
    assert "skipped" in result["steadiness"]
    json.dumps(result)  # plain data


def test_format_bench_names_every_stage(result):
    text = format_bench(result)
    for word in (*ALL_STAGES, "naive", "fps", "CPU ms", "target", "steadiness"):
        assert word in text


def test_bench_command_prints_json(short_clip, capsys):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--video", str(short_clip), "--frames", "4", "--baseline-frames", "1",
                              "--no-steadiness", "--json"])
    assert run(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["chain"]["frames"] == 4 and data["naive"]["frames"] == 1


def test_the_stage_table_follows_the_result(result):
    rows = [line.split()[0] for line in format_bench(result).splitlines()[4:4 + len(ALL_STAGES)]]
    assert rows == list(ALL_STAGES)  # decode first, then the chain's stages in their order


def test_a_clip_too_short_to_time_and_a_val_folder_without_faces_are_user_errors(short_clip, tmp_path):
    with pytest.raises(SourceError, match="fewer than 13 frames, nothing to time"):
        run_bench(short_clip, steadiness=False, warmup=12)
    with pytest.raises(DatasetError, match="no FER2013 class folders"):
        run_bench(short_clip, frames=1, baseline_frames=1, val_dir=tmp_path, warmup=0)


CAMERA_SIZES = {0: (640, 480), 3: (1280, 720)}  # the indices that give a picture


class FakeCapture:
    """Camera 0: 640x480 at 30 fps. 1 opens but gives no picture (a metadata node). 3: 1280x720, no rate
    reported. Any other index: nothing there."""

    def __init__(self, index: int):
        self.index, self.released = index, False

    def isOpened(self) -> bool:
        return self.index in (0, 1, 3)

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.index not in CAMERA_SIZES:
            return False, None
        width, height = CAMERA_SIZES[self.index]
        return True, np.zeros((height, width, 3), np.uint8)

    def get(self, prop: int) -> float:
        return 30.0 if prop == cv2.CAP_PROP_FPS and self.index == 0 else 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self.released = True


def test_list_cameras_lists_the_cameras_that_give_a_picture_and_lets_go_of_all(monkeypatch):
    opened: list[FakeCapture] = []

    def capture(index: int, *backend: int) -> FakeCapture:
        opened.append(FakeCapture(index))
        return opened[-1]

    monkeypatch.setattr(sys, "platform", "win32")  # by index, as on Windows and macOS: no /dev nodes to depend on
    monkeypatch.setattr(sources.cv2, "VideoCapture", capture)
    cameras = list_cameras(max_index=5)
    assert cameras == [CameraInfo(0, 640, 480, 30.0), CameraInfo(3, 1280, 720, sources.DEFAULT_FPS)]
    assert cameras[0].describe() == "--camera 0: 640x480 at 30 fps"
    assert [camera.index for camera in opened] == [0, 1, 2, 3, 4]  # every index was tried
    assert all(camera.released for camera in opened)  # none is held away from other apps
