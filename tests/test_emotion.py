import numpy as np
import pytest

from emobridge.perception.emotion import EmotionClassifier, default_model_path
from emobridge.errors import ModelError
from emobridge.labels import EMOTIONS
from emobridge.perception.model_info import ModelInfo
from onnx_models import linear_model


def test_metadata_round_trip():
    info = ModelInfo(classes=EMOTIONS, input_size=48, mean=0.4, std=0.3, training_data="FER2013 train",
                     val_accuracy=0.65, extra={"architecture": "x"})
    assert ModelInfo.from_metadata(info.to_metadata()) == info


def test_runtime_reads_class_order_from_the_model(tmp_path):
    # The model lists classes reversed; its column k is reversed[k]. A face that lights only
    # the weights of the model's column 0 ("neutral") must come out as neutral.
    reversed_classes = tuple(reversed(EMOTIONS))
    w = np.zeros((48 * 48, 7))
    w[:, 0] = 0.01
    path = linear_model(tmp_path / "m.onnx", ModelInfo(classes=reversed_classes, mean=0.0, std=1.0), w)
    classifier = EmotionClassifier(path)
    reading = classifier.classify(np.full((48, 48), 255, np.uint8))
    assert reading.label == "neutral"
    assert reading.probs.shape == (7,) and reading.probs.sum() == pytest.approx(1.0, abs=1e-5)


def test_normalisation_comes_from_metadata(tmp_path):
    path = linear_model(tmp_path / "m.onnx", ModelInfo(classes=EMOTIONS, mean=0.5, std=0.25))
    classifier = EmotionClassifier(path)
    x = classifier.prepare(np.array([[[0, 255]]], np.uint8))
    assert x.shape == (1, 1, 1, 2)
    assert x.ravel() == pytest.approx([-2.0, 2.0])


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="not found.*--model"):
        EmotionClassifier(tmp_path / "nope.onnx")


def test_corrupt_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"this is not a model")
    with pytest.raises(ModelError) as error:
        EmotionClassifier(bad)
    assert "could not be loaded" in str(error.value) and "\n" not in str(error.value)


def test_model_without_metadata_is_refused(tmp_path):
    with pytest.raises(ModelError, match="m.onnx has no 'emobridge.classes' metadata: export it with 'emobridge train'"):
        EmotionClassifier(linear_model(tmp_path / "m.onnx", None))


def test_metadata_that_is_not_json_is_a_model_error():
    meta = ModelInfo(classes=EMOTIONS).to_metadata()
    meta["emobridge.mean"] = "half"
    with pytest.raises(ModelError, match="x.onnx: metadata emobridge.mean is not JSON"):
        ModelInfo.from_metadata(meta, source="x.onnx")


def test_model_with_other_classes_is_refused(tmp_path):
    info = ModelInfo(classes=("cat", "dog", "a", "b", "c", "d", "e"))
    with pytest.raises(ModelError, match="7 FER classes"):
        EmotionClassifier(linear_model(tmp_path / "m.onnx", info))


def test_shipped_model_is_installed_with_its_metadata():
    classifier = EmotionClassifier(default_model_path())
    assert set(classifier.info.classes) == set(EMOTIONS)
    assert classifier.info.input_size == 48
    assert classifier.info.val_accuracy is not None and classifier.info.val_accuracy >= 0.60
