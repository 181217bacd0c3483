"""emobridge bench: every figure is there and sane (no timing thresholds: machines differ)."""

from __future__ import annotations

import argparse
import json

import cv2
import pytest

from emobridge.errors import DatasetError, SourceError
from emobridge.tools.bench import add_arguments, format_bench, run, run_bench
from emobridge.demo import demo_clip_path
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
    assert set(result["targets"]) == {"median_ms", "p95_ms", "met"}
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


def test_list_cameras_returns_openable_cameras_only():
    cameras = list_cameras(max_index=2)
    assert isinstance(cameras, list)
    for camera in cameras:  # none on a CI machine; a real one where there is a webcam
        assert isinstance(camera, CameraInfo) and camera.width > 0 and camera.height > 0
        assert "--camera" in camera.describe()
