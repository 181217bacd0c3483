"""`emobridge run`'s camera options: --camera NAME, --size WxH, --fps N, from the command line to the source."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

from emobridge.cli import build_parser, run_config_from_args
from emobridge.live.wiring import source_opener
from emobridge.perception.sources import ImageFolderSource
from running import emobridge, unique_port

TIMEOUT = 90  # seconds: far more than a refusal needs on a busy machine; a hang fails, it does not block


def parse(*argv: str):
    return build_parser().parse_args(["run", *argv])


@pytest.mark.parametrize("text, size", [("1280x720", (1280, 720)), ("640X480", (640, 480)), ("320x240", (320, 240))])
def test_size_parses(text, size):
    assert parse("--size", text).size == size


@pytest.mark.parametrize("text", ["1280", "1280x", "x720", "1280x720x3", "1280*720", "1280.5x720", "0x480",
                                  "99999x480", "big", ""])
def test_bad_size_is_one_argparse_error(capsys, text):
    with pytest.raises(SystemExit) as exit_:
        parse(f"--size={text}")
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("emobridge run: error: argument --size: ") and "1280x720" in error, error


@pytest.mark.parametrize("text", ["abc", "0", "-5", "nan", "inf", "5000"])
def test_bad_fps_is_one_argparse_error(capsys, text):
    with pytest.raises(SystemExit) as exit_:
        parse(f"--fps={text}")
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("emobridge run: error: argument --fps: ") and "frames per second" in error, error


def test_camera_takes_index_path_or_name():
    assert parse().camera == 0
    assert parse("--camera", "2").camera == 2
    assert parse("--camera", "/dev/video2").camera == "/dev/video2"
    assert parse("--camera", "HD Pro Webcam C920").camera == "HD Pro Webcam C920"


def test_fps_and_size_land_in_the_run_config(tmp_path):
    config = run_config_from_args(parse("--images", str(tmp_path), "--fps", "20", "--size", "320x240"))
    assert config.fps == 20.0 and config.size == (320, 240) and config.images == str(tmp_path)
    unset = run_config_from_args(parse())
    assert unset.fps is None and unset.size is None


def test_fps_reaches_the_image_folder(tmp_path):
    # The daemon opens its source from the config alone; no MIDI port is needed to check what it opens.
    for i in range(3):
        assert cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8), 50 * i, np.uint8))
    config = run_config_from_args(parse("--images", str(tmp_path), "--fps", "20"))
    with source_opener(config)() as source:
        assert isinstance(source, ImageFolderSource)
        assert [frame.time for frame in source] == pytest.approx([0.0, 0.05, 0.1])


def test_unknown_camera_name_exits_2_with_one_line():
    # The source opens before the MIDI port, so this fails on the camera whatever MIDI would have said.
    daemon = emobridge("run", "--camera", "No Such Cam", "--midi-backend", "jack", "--midi-port", unique_port())
    try:
        _, err = daemon.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        daemon.kill()
        pytest.fail(f"still running after {TIMEOUT} s; it said: {daemon.communicate()[1][-2000:]}")
    lines = [line for line in err.splitlines() if line.strip()]
    assert daemon.returncode == 2, err
    assert len(lines) == 1 and lines[0].startswith("emobridge: error:"), err
    assert '"No Such Cam"' in lines[0] and "emobridge cameras" in lines[0], lines[0]
