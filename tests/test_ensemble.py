"""emobridge ensemble: several models joined into one ONNX graph that averages them, read by the runtime as any model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx", reason="joining models needs the onnx package: pip install '.[train]' (CI installs it)")

from emobridge.errors import ModelError, UserError
from emobridge.tools.datasets import load_split
from emobridge.perception.emotion import EmotionClassifier
from emobridge.labels import EMOTIONS
from emobridge.perception.model_info import ModelInfo
from emobridge.train.ensemble import make_ensemble, parse_weights, split_ensemble, write_ensemble
from onnx_models import linear_model  # noqa: E402
from tiny_data import write_folders  # noqa: E402

INFO = ModelInfo(classes=EMOTIONS, training_data="tiny", extra={"architecture": "linear", "tta": "none"})


def member(path: Path, seed: int, info: ModelInfo = INFO) -> Path:
    weights = np.random.default_rng(seed).normal(0, 0.05, (48 * 48, len(info.classes)))
    return linear_model(path, info, weights)


def faces(n: int = 12) -> np.ndarray:
    return np.random.default_rng(3).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_the_ensemble_is_the_weighted_mean_of_its_members_in_one_graph(tmp_path):
    a, b = member(tmp_path / "a.onnx", 1), member(tmp_path / "b.onnx", 2)
    out = tmp_path / "both.onnx"
    write_ensemble([a, b], out, weights=[3, 1])

    pa, pb = EmotionClassifier(a).probabilities(faces()), EmotionClassifier(b).probabilities(faces())
    joined = EmotionClassifier(out)
    got = joined.probabilities(faces())
    assert np.abs(pa - pb).max() > 0.05, "the two members should disagree, or the test proves nothing"
    np.testing.assert_allclose(got, 0.75 * pa + 0.25 * pb, atol=1e-5)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)
    assert joined.info.extra["architecture"] == "ensemble of 2: linear + linear"
    assert "a.onnx" in joined.info.extra["members"] and "b.onnx" in joined.info.extra["members"]
    assert joined.info.extra["tta"] == "none" and joined.info.training_data == "ensemble of 2: tiny | tiny"


def test_what_the_members_do_not_share_is_said_per_member(tmp_path):
    flipped = ModelInfo(classes=EMOTIONS, training_data="other", extra={"architecture": "linear", "tta": "flip"})
    out = tmp_path / "mixed.onnx"
    info = write_ensemble([member(tmp_path / "a.onnx", 1), member(tmp_path / "b.onnx", 2, flipped)], out)
    assert info.extra["tta"] == "per member"
    assert "tta none" in info.extra["members"] and "tta flip" in info.extra["members"]


def test_val_figures_are_measured_on_the_written_file(tmp_path):
    data = write_folders(tmp_path / "fer", "val", per_class=6)
    a, b, c = (member(tmp_path / f"{name}.onnx", seed) for name, seed in (("a", 1), ("b", 2), ("c", 3)))
    out = tmp_path / "three.onnx"
    report = make_ensemble([a, b, c], out, load_split(data, "val"))

    val = load_split(data, "val")
    mean = sum(EmotionClassifier(m).probabilities(val.images) for m in (a, b, c)) / 3
    expected = float(np.mean(mean.argmax(1) == val.labels))
    info = EmotionClassifier(out).info
    assert report.accuracy == pytest.approx(expected)
    assert info.val_accuracy == pytest.approx(round(expected, 4))
    assert info.val_macro_f1 is not None and "ensemble of 3" in info.training_data


def test_members_that_read_faces_differently_are_refused(tmp_path):
    a = member(tmp_path / "a.onnx", 1)
    other_order = ModelInfo(classes=tuple(reversed(EMOTIONS)), training_data="tiny")
    b = member(tmp_path / "b.onnx", 2, other_order)
    with pytest.raises(ModelError, match="classes"):
        write_ensemble([a, b], tmp_path / "out.onnx")
    other_norm = ModelInfo(classes=EMOTIONS, mean=0.4)
    with pytest.raises(ModelError, match="mean"):
        write_ensemble([a, member(tmp_path / "c.onnx", 3, other_norm)], tmp_path / "out.onnx")


def test_bad_ensembles_say_what_is_wrong(tmp_path):
    a = member(tmp_path / "a.onnx", 1)
    with pytest.raises(UserError, match="at least two"):
        write_ensemble([a], tmp_path / "out.onnx")
    with pytest.raises(UserError, match="one positive weight per model"):
        write_ensemble([a, a], tmp_path / "out.onnx", weights=[1, 0])
    with pytest.raises(ModelError, match="missing.onnx not found"):
        write_ensemble([a, tmp_path / "missing.onnx"], tmp_path / "out.onnx")
    (tmp_path / "notes.onnx").write_text("not a model")
    with pytest.raises(ModelError, match="notes.onnx is not an ONNX file"):
        write_ensemble([a, tmp_path / "notes.onnx"], tmp_path / "out.onnx")
    assert parse_weights("2,1.5") == [2.0, 1.5]
    with pytest.raises(UserError, match="--weights '2,x': expected numbers separated by commas"):
        parse_weights("2,x")


def test_the_command_prints_members_and_ensemble_and_the_eval_reads_it(tmp_path):
    data = write_folders(tmp_path / "fer", "val", per_class=4)
    a, b = member(tmp_path / "a.onnx", 1), member(tmp_path / "b.onnx", 2)
    out = tmp_path / "both.onnx"
    cmd = [sys.executable, "-m", "emobridge", "ensemble", str(a), str(b), "--out", str(out), "--val", str(data)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("member ") == 2 and f"wrote {out}: val accuracy" in done.stdout

    ev = subprocess.run([sys.executable, "-m", "emobridge", "eval", str(data / "val"), "--model", str(out), "--json"],
                        capture_output=True, text=True, timeout=120)
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["accuracy"] == pytest.approx(EmotionClassifier(out).info.val_accuracy, abs=1e-4)

    alone = subprocess.run(cmd[:5] + cmd[6:], capture_output=True, text=True, timeout=120)
    assert alone.returncode == 2 and "member" not in alone.stdout  # refused before the val faces are read
    assert alone.stderr.strip() == "emobridge: error: an ensemble needs at least two models, or one with --views"

    missing = subprocess.run(cmd[:4] + [str(tmp_path / "nope.onnx")] + cmd[5:], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"emobridge: error: ensemble member {tmp_path / 'nope.onnx'} not found: "
                                                   "give the ONNX files of trained models"]


def test_joining_models_needs_onnx_but_not_torch():
    code = "import sys; sys.modules['torch'] = None\nimport emobridge.train.ensemble\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_split_gives_back_each_member_as_it_was(tmp_path):
    flipped = ModelInfo(classes=EMOTIONS, training_data="other", extra={"architecture": "linear", "tta": "flip"})
    a, b = member(tmp_path / "a.onnx", 1), member(tmp_path / "b.onnx", 2, flipped)
    joined = tmp_path / "both.onnx"
    write_ensemble([a, b], joined, weights=[2, 1])

    split = split_ensemble(joined, tmp_path / "members")
    assert [p.name for p in split] == ["a.onnx", "b.onnx"]
    for original, back in zip((a, b), split):
        np.testing.assert_allclose(EmotionClassifier(back).probabilities(faces()),
                                   EmotionClassifier(original).probabilities(faces()), atol=1e-6)
    assert EmotionClassifier(split[1]).info.extra["tta"] == "flip"
    assert EmotionClassifier(split[1]).info.training_data == "other"
    # and they join again: the split members are ordinary model files
    write_ensemble(split, tmp_path / "again.onnx", weights=[2, 1])
    np.testing.assert_allclose(EmotionClassifier(tmp_path / "again.onnx").probabilities(faces()),
                               EmotionClassifier(joined).probabilities(faces()), atol=1e-6)


def test_an_ensemble_joins_an_ensemble_and_splits_back_into_it(tmp_path):
    a, b, c = (member(tmp_path / f"{name}.onnx", seed) for name, seed in (("a", 1), ("b", 2), ("c", 3)))
    pair, three = tmp_path / "pair.onnx", tmp_path / "three.onnx"
    write_ensemble([a, b], pair)
    write_ensemble([pair, c], three, weights=[2, 1])  # the pair counts twice: three members weighed alike
    mean = sum(EmotionClassifier(m).probabilities(faces()) for m in (a, b, c)) / 3
    np.testing.assert_allclose(EmotionClassifier(three).probabilities(faces()), mean, atol=1e-5)
    inner, outer = split_ensemble(three, tmp_path / "back")
    assert inner.name == "pair.onnx" and outer.name == "c.onnx"
    np.testing.assert_allclose(EmotionClassifier(inner).probabilities(faces()),
                               EmotionClassifier(pair).probabilities(faces()), atol=1e-6)


def test_split_refuses_a_single_model(tmp_path):
    with pytest.raises(UserError, match="not an ensemble"):
        split_ensemble(member(tmp_path / "a.onnx", 1), tmp_path / "members")
