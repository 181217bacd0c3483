"""Test-time views inside the model file (emobridge ensemble --views): each face zoomed, mirrored, classified, averaged."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="joining models needs the onnx package: pip install '.[train]' (CI installs it)")

from emobridge.errors import UserError
from emobridge.perception.emotion import EmotionClassifier
from emobridge.tools.datasets import load_split
from emobridge.train.ensemble import make_ensemble, split_ensemble, write_ensemble
from emobridge.train.views import View, apply_views, parse_views, zoom_matrix
from test_ensemble import faces, member
from tiny_data import write_folders

VIEWS = (View(1.0), View(0.93), View(1.12, mirror=True))


def test_a_zoom_view_is_the_picture_opencv_makes():
    picture = np.random.default_rng(5).integers(0, 256, (48, 48)).astype(np.uint8)
    picture = cv2.GaussianBlur(picture, (7, 7), 2)  # a face's gradients, not noise
    for scale in (0.9, 1.0, 1.08):
        opencv = cv2.warpAffine(picture, cv2.getRotationMatrix2D((23.5, 23.5), 0, scale), (48, 48),
                                flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        ours = apply_views(picture[None], (View(scale),))[0]
        # OpenCV rounds its sample positions to 1/32 pixel: within about a grey level on smooth pictures
        assert np.abs(ours - opencv).mean() < 0.5 and np.abs(ours - opencv).max() < 3
    mirrored = apply_views(picture[None], (View(1.0, mirror=True),))[0]
    np.testing.assert_array_equal(mirrored, picture[:, ::-1].astype(np.float32))
    assert np.allclose(zoom_matrix(48, 1.2).sum(axis=1), 1.0)  # every output pixel a weighted mean


def test_the_file_answers_the_mean_of_the_model_over_its_views(tmp_path):
    a = member(tmp_path / "a.onnx", 1)
    out = tmp_path / "views.onnx"
    info = write_ensemble([a], out, views=VIEWS)

    seen = EmotionClassifier(a).probabilities(np.clip(apply_views(faces(), VIEWS), 0, 255))
    expected = seen.reshape(len(VIEWS), len(faces()), -1).mean(axis=0)
    got = EmotionClassifier(out).probabilities(faces())
    assert np.abs(got - EmotionClassifier(a).probabilities(faces())).max() > 0.01, "views should change the answer"
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert info.extra["tta"] == "views x1, x0.93, mirror x1.12"


def test_an_ensemble_with_views_is_measured_and_splits_back_into_its_members(tmp_path):
    data = write_folders(tmp_path / "fer", "val", per_class=6)
    a, b = member(tmp_path / "a.onnx", 1), member(tmp_path / "b.onnx", 2)
    out = tmp_path / "both.onnx"
    val = load_split(data, "val")
    report = make_ensemble([a, b], out, val, views=VIEWS)

    pixels = apply_views(val.images, VIEWS)
    mean = sum(EmotionClassifier(m).probabilities(pixels) for m in (a, b)) / 2
    expected = mean.reshape(len(VIEWS), len(val.images), -1).mean(axis=0)
    assert report.accuracy == pytest.approx(float(np.mean(expected.argmax(1) == val.labels)))
    back = split_ensemble(out, tmp_path / "members")
    for original, split in zip((a, b), back):
        np.testing.assert_allclose(EmotionClassifier(split).probabilities(faces()),
                                   EmotionClassifier(original).probabilities(faces()), atol=1e-6)


def test_bad_views_say_what_to_give():
    assert parse_views("1,0.93", mirror=True) == (View(1.0), View(1.0, True), View(0.93), View(0.93, True))
    for text in ("1,x", "1,3", "1,1", ""):
        with pytest.raises(UserError, match=r"--views .*e\.g\. 1,0\.93,1\.12"):
            parse_views(text, mirror=False)


def test_the_command_takes_one_model_with_views_and_refuses_mirror_without_them(tmp_path):
    data = write_folders(tmp_path / "fer", "val", per_class=4)
    a = member(tmp_path / "a.onnx", 1)
    cmd = [sys.executable, "-m", "emobridge", "ensemble", str(a), "--out", str(tmp_path / "v.onnx"), "--val", str(data)]
    done = subprocess.run(cmd + ["--views", "1,0.93", "--mirror-views"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "each face seen 4 ways" in done.stdout
    alone = subprocess.run(cmd + ["--mirror-views"], capture_output=True, text=True, timeout=120, check=False)
    assert alone.returncode == 2
    assert alone.stderr.strip().startswith("emobridge: error: --mirror-views mirrors the --views: give them too")


def test_a_views_file_joins_an_ensemble_and_answers_any_batch(tmp_path):
    # exported networks carry their inner shapes (value_info) with the input's batch symbol; inside the views a
    # batch is views × faces, and an ensemble of such a file once failed at run time on the second batch size
    a = member(tmp_path / "a.onnx", 1)
    model = onnx.load(str(a))
    model.graph.value_info.append(onnx.helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 7]))
    onnx.save(model, str(a))
    b = member(tmp_path / "b.onnx", 2)
    viewed, joined = tmp_path / "views.onnx", tmp_path / "joined.onnx"
    write_ensemble([a], viewed, views=VIEWS)
    write_ensemble([viewed, b], joined)

    classifier = EmotionClassifier(joined)
    for n in (12, 5, 1):
        expected = (EmotionClassifier(viewed).probabilities(faces(n)) + EmotionClassifier(b).probabilities(faces(n))) / 2
        np.testing.assert_allclose(classifier.probabilities(faces(n)), expected, atol=1e-5)
