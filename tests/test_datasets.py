import json

import numpy as np
import pytest

from emobridge.errors import DatasetError
from emobridge.tools.datasets import find_val_folder, load_split
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
    with pytest.raises(DatasetError, match="not found"):
        load_split(tmp_path / "nope", "train")
    with pytest.raises(DatasetError, match="no train split"):
        load_split(tmp_path, "train")
    with pytest.raises(DatasetError, match="no FER2013 class folders"):
        load_split(tmp_path, "val")


def test_the_val_folder_is_found_in_one_order(tmp_path):
    """The folder given, else val/, test/, PublicTest/: the same for eval, bench, ensemble and training."""
    write_folders(tmp_path, "PublicTest", 1)
    assert find_val_folder(tmp_path) == tmp_path / "PublicTest"
    write_folders(tmp_path, "test", 1)
    assert find_val_folder(tmp_path) == tmp_path / "test"
    write_folders(tmp_path, "val", 1)
    assert find_val_folder(tmp_path) == tmp_path / "val"
    assert find_val_folder(tmp_path / "test") == tmp_path / "test"  # a class folder is taken as it is
    assert load_split(tmp_path, "val").source == str(tmp_path / "val")


@pytest.mark.parametrize("layout", ["folder", "csv"])
def test_eval_reads_the_val_split_of_either_layout(tmp_path, capsys, layout):
    from emobridge.cli import main

    data = write_folders(tmp_path, "val", 2) if layout == "folder" else write_csv(tmp_path / "fer2013.csv", 2)
    assert main(["eval", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 14
    assert main(["eval", str(tmp_path / "nope")]) == 2
    assert "data set" in capsys.readouterr().err


@pytest.mark.parametrize("row, message", [
    ("7,{pixels},Training", "fer2013.csv:3: emotion must be 0 to 6, got '7'"),
    ("x,{pixels},Training", "fer2013.csv:3: emotion must be 0 to 6, got 'x'"),
    ("1,{pixels} 300,Training", "fer2013.csv:3: pixels must be grey levels 0 to 255"),
    ("1,1 2 3,Training", "fer2013.csv:3: expected 2304 pixels, found 3"),
])
def test_a_bad_csv_row_names_its_line(tmp_path, row, message):
    pixels = " ".join(["9"] * (48 * 48 - row.count("300")))
    lines = ["emotion,pixels,Usage", f"0,{' '.join(['9'] * 48 * 48)},Training", row.format(pixels=pixels)]
    (tmp_path / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=message):
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
