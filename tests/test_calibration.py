"""Resting-face calibration: fit, the profile file, --profile on the commands, and recalibrating a running daemon."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from emobridge import cli
from emobridge.demo import demo_clip_path
from emobridge.errors import ProfileError
from emobridge.labels import EMOTIONS
from emobridge.perception.calibration import MAX_OFFSET, Profile, fit_profile, load_profile
from emobridge.perception.chain import Perception
from emobridge.perception.emotion import EmotionClassifier
from face_clips import HOPPER_NEUTRAL
from running import emobridge, free_udp_port, unique_port, wait_until

NEUTRAL, SAD, HAPPY = EMOTIONS.index("neutral"), EMOTIONS.index("sad"), EMOTIONS.index("happy")


def readings(main: int, share: float, n: int = 40, seed: int = 0, neutral: float = 0.0) -> np.ndarray:
    """*n* readings: *share* on *main*, *neutral* on neutral, the rest spread at random."""
    rng = np.random.default_rng(seed)
    rest = rng.dirichlet(np.ones(7), n) * (1 - share - neutral)
    rest[:, main] += share
    rest[:, NEUTRAL] += neutral
    return rest


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier()


@pytest.fixture(scope="module")
def resting_folder(tmp_path_factory):
    """Pictures of a calm face: frames of the demo clip around Hopper's neutral second."""
    folder = tmp_path_factory.mktemp("resting")
    capture = cv2.VideoCapture(str(demo_clip_path()))
    capture.set(cv2.CAP_PROP_POS_FRAMES, round((HOPPER_NEUTRAL - 1.5) * 15))
    for i in range(30):
        ok, frame = capture.read()
        assert ok
        if i % 3 == 0:
            cv2.imwrite(str(folder / f"rest{i:02d}.png"), frame)
    capture.release()
    return folder


def test_a_face_that_rests_sad_reads_neutral_after_fitting():
    resting = readings(SAD, 0.45, neutral=0.2)  # the model's bias: a calm face read as sad, neutral second
    assert np.mean(resting.argmax(1) == NEUTRAL) < 0.2
    profile = fit_profile(resting, "0" * 64)
    assert np.mean(profile.apply(resting).argmax(1) == NEUTRAL) >= 0.8
    assert profile.neutral_after >= 0.8 and profile.frames == 40
    assert profile.offsets[NEUTRAL] >= 0 and all(v <= 0 for i, v in enumerate(profile.offsets) if i != NEUTRAL)
    assert all(abs(v) <= MAX_OFFSET + 1e-9 for v in profile.offsets)
    smile = np.array([[0.02, 0.01, 0.02, 0.85, 0.03, 0.02, 0.05]])
    assert profile.apply(smile).argmax() == HAPPY  # a clear expression is not erased
    extreme = fit_profile(readings(SAD, 0.9, neutral=0.01), "0" * 64)  # the bound holds whatever the face
    assert all(abs(v) <= MAX_OFFSET + 1e-9 for v in extreme.offsets)
    assert extreme.apply(np.array([[0.02, 0.01, 0.02, 0.05, 0.85, 0.02, 0.03]])).argmax() == SAD
    never_seen = fit_profile(readings(NEUTRAL, 0.8), "0" * 64)
    assert never_seen.offsets[HAPPY] <= 0  # a class the resting face never shows is not made easier to read


def test_too_few_faces_is_a_one_line_error():
    with pytest.raises(ProfileError, match="at least 5 frames") as error:
        fit_profile(readings(SAD, 0.5, n=3), "0" * 64)
    assert "\n" not in str(error.value)


def test_calibrate_then_classify_round_trip(tmp_path, resting_folder, classifier, capsys):
    out = tmp_path / "me.json"
    assert cli.main(["calibrate", "--images", str(resting_folder), "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["format"] == "emobridge-profile" and data["version"] == 1
    assert data["model_sha256"] == classifier.identity and data["frames"] == 10
    profile = load_profile(out, classifier.identity)
    assert profile.offsets == pytest.approx([data["offsets"][e] for e in EMOTIONS])

    pictures = sorted(str(p) for p in resting_folder.iterdir())
    assert cli.main(["classify", "--json", *pictures]) == 0
    raw = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert cli.main(["classify", "--json", "--profile", str(out), *pictures]) == 0
    calibrated = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert all(r["label"] == "neutral" for r in calibrated)
    mean_neutral = [np.mean([r["probs"]["neutral"] for r in rows]) for rows in (raw, calibrated)]
    assert mean_neutral[1] > mean_neutral[0]  # the profile moved this face's readings towards neutral


def broken_profiles(tmp_path, classifier) -> dict[str, object]:
    good = Profile(tuple([0.0] * 6 + [0.5]), classifier.identity).to_json()
    return {
        "not JSON": "{offsets: oops",
        "another format": json.dumps({"format": "something-else"}),
        "a newer version": json.dumps({**good, "version": 99}),
        "damaged offsets": json.dumps({**good, "offsets": {"happy": "lots"}}),
        "an offset out of bounds": json.dumps({**good, "offsets": {**good["offsets"], "sad": -50.0}}),
        "another model": json.dumps({**good, "model_sha256": "f" * 64}),
        "no model": json.dumps({k: v for k, v in good.items() if k != "model_sha256"}),
        "binary": b"\xff\xfe\x00garbage",
    }


def test_a_broken_or_foreign_profile_is_one_line_at_start(tmp_path, classifier, resting_folder, capsys):
    picture = str(next(resting_folder.iterdir()))
    cases = broken_profiles(tmp_path, classifier)
    cases["missing"] = None
    for what, content in cases.items():
        path = tmp_path / f"{what.replace(' ', '_')}.json"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(content)
        for argv in (["classify", "--profile", str(path), picture], ["eval", "--profile", str(path), str(tmp_path)]):
            assert cli.main(argv) == 2, what
            err = capsys.readouterr().err
            assert err.startswith("emobridge: error: profile ") and err.count("\n") == 1, (what, err)
            assert str(path) in err and "emobridge calibrate" in err, (what, err)
    foreign = tmp_path / "another_model.json"
    assert "another emotion model" in pytest.raises(ProfileError, load_profile, foreign, classifier.identity).value.args[0]


def test_perception_recalibrates_at_a_frame_and_keeps_the_old_profile_when_it_cannot(resting_folder, classifier):
    frames = [cv2.imread(str(p)) for p in sorted(resting_folder.iterdir())]
    perception = Perception(EmotionClassifier())
    done: list[tuple] = []
    perception.request_calibration(0.5, lambda profile, problem: done.append((profile, problem)))
    assert perception.classifier.profile is None  # nothing happens until the perception thread's next frame
    for i in range(12):
        perception.process(frames[i % len(frames)], i * 0.1)
    assert len(done) == 1 and done[0][1] is None
    profile = done[0][0]
    assert perception.classifier.profile is profile and 5 <= profile.frames <= 6  # the frames of 0.5 s at 10 fps
    empty = np.full_like(frames[0], 120)
    perception.request_calibration(0.5, lambda profile, problem: done.append((profile, problem)))
    for i in range(12):
        perception.process(empty, 2.0 + i * 0.1)
    assert done[1][0] is None and "at least 5 frames" in done[1][1]
    assert perception.classifier.profile is profile  # the old one stays


@pytest.mark.jack
def test_the_control_address_recalibrates_a_running_daemon(jack_server, tmp_path, resting_folder):
    """A real daemon, a real UDP control server: /emobridge/control/calibrate fits a new profile from the
    face in view and saves it to the --profile file."""
    start = tmp_path / "start.json"
    assert cli.main(["calibrate", "--images", str(resting_folder), "--out", str(start)]) == 0
    before = json.loads(start.read_text())
    control = free_udp_port()
    daemon = emobridge("run", "--video", str(demo_clip_path()), "--loop", "--midi-backend", "jack",
                       "--midi-port", unique_port(), "--control", f"127.0.0.1:{control}", "--profile", str(start))
    try:
        time.sleep(3)  # the daemon starts and the clip plays
        assert daemon.poll() is None
        SimpleUDPClient("127.0.0.1", control).send_message("/emobridge/control/calibrate", [1.5])
        assert wait_until(lambda: json.loads(start.read_text()).get("source") == "recalibrated live", 20), \
            "the profile was never recalibrated"
        after = json.loads(start.read_text())
        assert after["model_sha256"] == before["model_sha256"] and after["frames"] >= 5
        assert after["offsets"] != before["offsets"]  # fitted on the clip's faces, not the pictures
    finally:
        daemon.terminate()
        _, err = daemon.communicate(timeout=20)
    assert "recalibrated: the resting face reads neutral" in err


def test_a_mapping_saved_with_another_profile_switches_it_and_a_bad_one_keeps_the_old(tmp_path, caplog):
    from show import classifier as shared_classifier, offline_show, play

    from face_clips import Placed, face_patch, frame_with

    frames = [frame_with([Placed(face_patch(HOPPER_NEUTRAL), 200, 100)])]
    model = shared_classifier()
    mine = fit_profile(readings(SAD, 0.45, neutral=0.2), model.identity, "me")
    mine.save(tmp_path / "me.json")
    (tmp_path / "broken.json").write_text("{not json")
    path = tmp_path / "mapping.yaml"
    path.write_text("profile: null\n")
    seen: dict[str, object] = {}
    show = offline_show(frames, mapping=str(path))
    try:
        play(show, 9.0, at={2.0: lambda: path.write_text("profile: me.json\n"),  # relative to the mapping's folder
                            5.0: lambda: seen.update(first=model.profile),
                            5.5: lambda: path.write_text("profile: broken.json\n")})
        assert seen["first"] is not None and seen["first"].offsets == pytest.approx(mine.offsets, abs=1e-5)
        assert model.profile is seen["first"], "the bad profile replaced the good one"
        assert "profile not changed" in caplog.text and "broken.json" in caplog.text
    finally:
        model.use_profile(None)  # the classifier is shared with the other show tests
