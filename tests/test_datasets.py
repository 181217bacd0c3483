import numpy as np
import pytest

from emobridge.tools.datasets import load_split
from emobridge.labels import EMOTIONS
from emobridge.tools.metrics import evaluate
from tiny_data import face, write_csv, write_folders


def test_folder_layout_with_val(tmp_path):
    write_folders(tmp_path, "train", 3)
    write_folders(tmp_path, "val", 2)
    train, val = load_split(tmp_path, "train"), load_split(tmp_path, "val")
    assert train.images.shape == (21, 48, 48) and train.images.dtype == np.uint8
    assert val.class_counts() == {name: 2 for name in EMOTIONS}
    happy = train.images[train.labels == EMOTIONS.index("happy")][0]
    assert happy[4 + 6 * EMOTIONS.index("happy") + 2, 10] > 200  # the class's bright band survived the round trip


def test_kaggle_layout_uses_test_as_val(tmp_path):
    write_folders(tmp_path, "train", 1)
    write_folders(tmp_path, "test", 2)
    assert len(load_split(tmp_path, "val")) == 14


def test_original_csv(tmp_path):
    csv = write_csv(tmp_path / "fer2013.csv", 2)
    train, val = load_split(csv, "train"), load_split(tmp_path, "val")  # the file, or its folder
    assert len(train) == 14 and len(val) == 14
    sad = EMOTIONS.index("sad")
    assert np.array_equal(train.images[train.labels == sad][0], face(sad, 0))


def test_missing_and_empty_data_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_split(tmp_path / "nope", "train")
    with pytest.raises(ValueError, match="no train split"):
        load_split(tmp_path, "train")


def test_metrics_match_a_hand_count():
    true = np.array([0, 0, 1, 1, 1, 3])
    pred = np.array([0, 1, 1, 1, 0, 3])
    report = evaluate(true, pred)
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.per_class["angry"].precision == pytest.approx(0.5)
    assert report.per_class["disgust"].recall == pytest.approx(2 / 3)
    assert report.per_class["happy"].f1 == pytest.approx(1.0)
    assert report.macro_f1 == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)  # classes without support are left out
    assert report.confusion[1] == [1, 2, 0, 0, 0, 0, 0]
