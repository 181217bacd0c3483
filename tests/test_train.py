"""Training, resume and ONNX export on a tiny generated data set (needs the [train] extra).

Without torch these tests skip, saying how to get it; in CI, or with EMOBRIDGE_TRAIN_TESTS=1, a missing
torch fails the run instead, as a missing JACK server does for the MIDI tests.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

try:
    import torch
except ImportError as error:
    _why = (f"the training tests need torch ({error}): ./scripts/test --with-train installs it "
            "(or pip install '.[train]'; on Linux plain PyPI's torch brings the CUDA stack, several GB)")
    if os.environ.get("CI") or os.environ.get("EMOBRIDGE_TRAIN_TESTS") == "1":
        pytest.fail(f"torch is required here (CI or EMOBRIDGE_TRAIN_TESTS=1): {_why}", pytrace=False)
    pytest.skip(_why, allow_module_level=True)

from emobridge.errors import ModelError, UserError
from emobridge.perception.emotion import EmotionClassifier
from emobridge.labels import EMOTIONS
from emobridge.train.export import check_export
from emobridge.train.trainer import TrainConfig, Trainer, to_tensor
from tiny_data import face, write_csv, write_folders  # noqa: E402


def config(tmp_path, data, epochs):
    return TrainConfig(data=str(data), out=str(tmp_path / "tiny.onnx"), workdir=str(tmp_path / "run"), epochs=epochs,
                       batch_size=16, lr=5e-3, widths=(4, 8, 8, 16), seed=3, device="cpu", threads=1)


@pytest.mark.parametrize("setting, message", [
    ({"epochs": 0}, "--epochs must be at least 1, got 0"),
    ({"widths": (32, 48)}, r"--widths must be four channel counts .*, got \(32, 48\)"),
    ({"depths": (1, 0, 2, 2)}, r"--depths must be four layer counts of at least 1.*, got \(1, 0, 2, 2\)"),
    ({"warmup": 1.0}, "--warmup must be a share between 0 and 1"),
    ({"lr": 0.0}, "--lr must be above 0"),
    ({"distill_weight": 1.5}, "--distill-weight must be from 0 to 1"),
    ({"unwarped": -0.1}, "--unwarped must be a share from 0 to 1"),
    ({"precision": "fp16"}, "--precision must be fp32 or bf16, got fp16"),
])
def test_settings_training_cannot_use_are_refused_by_their_option(setting, message):
    with pytest.raises(UserError, match=message):
        TrainConfig(data="fer", out="m.onnx", **setting)


def test_bad_devices_and_widths_are_user_errors(capsys):
    from emobridge.cli import main
    from emobridge.train.trainer import pick_device

    with pytest.raises(UserError, match="--device 'gpu': expected auto, cpu, cuda"):
        pick_device("gpu")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "fer", "--widths", "32,wide"])
    assert exit_.value.code == 2 and "--widths: expected whole numbers" in capsys.readouterr().err


def test_train_resume_and_export(tmp_path):
    data = write_folders(write_folders(tmp_path / "data", "train", 12), "test", 3, seed=77)  # Kaggle layout
    assert Trainer(config(tmp_path, data, epochs=3)).run(stop_after=2) is None  # paused, as a session's end would
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2]
    assert all({"train_loss", "train_acc", "val_acc", "val_macro_f1", "seconds"} <= row.keys() for row in log)
    assert not (tmp_path / "tiny.onnx").exists()

    with pytest.raises(UserError, match="--epochs 3"):
        Trainer(config(tmp_path, data, epochs=5)).run()  # a different plan cannot silently reuse the schedule

    # The same command again resumes after epoch 2 instead of starting over.
    out = Trainer(config(tmp_path, data, epochs=3)).run()
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1, 2, 3]

    classifier = EmotionClassifier(out)  # the runtime loads it from its own metadata
    assert classifier.info.classes == EMOTIONS
    assert classifier.info.val_accuracy is not None
    assert classifier.info.extra["architecture"].startswith("EmotionNet")
    faces = np.stack([face(i, i) for i in range(7)])
    probs = classifier.probabilities(faces)
    assert probs.shape == (7, 7) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # the network was trained on exactly what the runtime feeds it, as the file's metadata describes
    assert torch.equal(to_tensor(faces, torch.device("cpu")), torch.from_numpy(classifier.prepare(faces)))


def test_same_seed_same_weights(tmp_path):
    data = write_csv(tmp_path / "fer2013.csv", 6)
    weights = []
    for run in ("a", "b"):
        cfg = config(tmp_path, data, epochs=1)
        cfg.workdir = str(tmp_path / run)
        trainer = Trainer(cfg)
        trainer.train_epoch()
        weights.append(torch.cat([p.flatten() for p in trainer.model.parameters()]))
    assert torch.equal(weights[0], weights[1])


def test_bf16_trains_in_bfloat16_and_still_exports_a_float32_model(tmp_path):
    data = write_csv(tmp_path / "fer2013.csv", 6)
    losses, dtypes = {}, {}
    for precision in ("fp32", "bf16"):
        cfg = config(tmp_path, data, epochs=1)
        cfg.workdir, cfg.precision = str(tmp_path / precision), precision
        trainer = Trainer(cfg)

        def note_dtype(module, inputs, output, precision=precision) -> None:  # returns None: the output is kept
            dtypes.setdefault(precision, output.dtype)

        trainer.model.features[0][0].register_forward_hook(note_dtype)
        losses[precision], _ = trainer.train_epoch()
    assert dtypes == {"fp32": torch.float32, "bf16": torch.bfloat16}
    assert trainer.model.features[0][0].weight.dtype == torch.float32  # the weights themselves stay float32
    # the same seed sees the same faces in the same order: the two runs differ by rounding only
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.05)

    out = Trainer(cfg).run()  # resumes the bf16 run's folder and exports it
    probs = EmotionClassifier(out).probabilities(np.stack([face(i, i) for i in range(7)]))
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)


def test_init_starts_from_an_earlier_runs_weights_and_mixup_trains(tmp_path):
    data = write_csv(tmp_path / "fer2013.csv", 6)
    first = config(tmp_path, data, epochs=1)
    first.workdir = str(tmp_path / "first")
    Trainer(first).run(stop_after=1)
    best = torch.load(tmp_path / "first" / "best.pt", weights_only=False)["weights"]

    tuned = config(tmp_path, data, epochs=1)
    tuned.workdir, tuned.init, tuned.mixup = str(tmp_path / "tuned"), str(tmp_path / "first" / "best.pt"), 0.4
    trainer = Trainer(tuned)
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in best.items())  # starts where the other ended
    loss, _ = trainer.train_epoch()
    assert np.isfinite(loss)
    assert not all(torch.equal(trainer.model.state_dict()[k], v) for k, v in best.items())  # and learns from there

    with pytest.raises(UserError, match="--init .*empty.pt holds no weights"):
        torch.save({"epoch": 1}, tmp_path / "empty.pt")
        tuned.init = str(tmp_path / "empty.pt")
        Trainer(tuned)
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    for init, message in (("missing.pt", "no such file"), ("notes.pt", "is not a PyTorch checkpoint")):
        tuned.init = str(tmp_path / init)
        with pytest.raises(UserError, match=f"--init .*{init}.*{message}"):
            Trainer(tuned)
    tuned.init, tuned.widths = str(tmp_path / "first" / "best.pt"), (8, 8, 8, 8)
    with pytest.raises(UserError, match="do not fit EmotionNet.*give the --widths and --depths"):
        Trainer(tuned)
    tuned.widths, tuned.depths = (4, 8, 8, 16), (1, 2, 2, 2)
    with pytest.raises(UserError, match=r"do not fit EmotionNet\(4, 8, 8, 16\), depths=\(1, 2, 2, 2\)"):
        Trainer(tuned)


def test_a_small_student_learns_from_a_wider_teacher(tmp_path):
    data = write_csv(tmp_path / "fer2013.csv", 6)
    teacher_cfg = config(tmp_path, data, epochs=1)
    teacher_cfg.workdir, teacher_cfg.widths = str(tmp_path / "teacher"), (8, 16, 16, 32)
    teacher_cfg.depths = (1, 2, 3, 2)  # a deeper teacher: its checkpoint says so, the student needs no option
    Trainer(teacher_cfg).run(stop_after=1)
    best = tmp_path / "teacher" / "best.pt"

    student_cfg = config(tmp_path, data, epochs=1)
    student_cfg.workdir, student_cfg.teacher = str(tmp_path / "student"), str(best)
    student = Trainer(student_cfg)
    before = {k: v.clone() for k, v in student.teacher.state_dict().items()}
    x = torch.randn(5, 1, 48, 48)
    logits = student.model(x)
    assert student.distill_loss(x, student.teacher(x)) < 1e-4  # the teacher agrees with itself
    assert student.distill_loss(x, logits) > 0
    loss, _ = student.train_epoch()
    assert np.isfinite(loss)
    assert all(torch.equal(before[k], v) for k, v in student.teacher.state_dict().items()), "the teacher changed"
    assert student.model.widths == (4, 8, 8, 16)  # the student keeps its own (shipped) size
    assert student.model.depths == (1, 1, 2, 2) and student.teacher.depths == (1, 2, 3, 2)

    with pytest.raises(UserError, match="--teacher .*best.pt"):
        torch.save({"model": {}}, tmp_path / "last.pt")
        student_cfg.teacher = str(tmp_path / "last.pt")
        Trainer(student_cfg)


def test_flip_and_int8_export_runs_in_the_runtime_and_says_so(tmp_path, monkeypatch):
    import emobridge.train.export as export
    from emobridge.train.export import FlipAveraged, run_onnx

    # A 2-epoch toy model is nearly uniform, so int8 may move its top class on many faces; the
    # agreement check itself is tested below.
    monkeypatch.setattr(export, "INT8_AGREEMENT", 0.0)

    data = write_folders(write_folders(tmp_path / "data", "train", 12), "val", 3, seed=77)
    cfg = config(tmp_path, data, epochs=2)
    trainer = Trainer(cfg)
    trainer.run()
    plain = EmotionClassifier(cfg.out)
    assert plain.info.extra["tta"] == "none" and plain.info.extra["weights"] == "float32"

    cfg.tta, cfg.out = "flip", str(tmp_path / "flip.onnx")
    Trainer(cfg).export()
    flip = EmotionClassifier(cfg.out)
    faces = np.stack([face(i % 7, i) for i in range(12)])
    mirrored = faces[:, :, ::-1]
    assert np.allclose(flip.probabilities(faces), flip.probabilities(mirrored), atol=1e-5)  # the graph reads both
    both = (plain.probabilities(faces) + plain.probabilities(mirrored)) / 2
    assert np.allclose(flip.probabilities(faces), both, atol=1e-4)

    cfg.int8, cfg.out = True, str(tmp_path / "int8.onnx")
    Trainer(cfg).export()
    small = EmotionClassifier(cfg.out)  # loads like any model, metadata and all
    assert small.info.extra["weights"] == "int8" and small.info.extra["tta"] == "flip"
    assert small.info.val_accuracy is not None
    ops = {node.op_type for node in __import__("onnx").load(cfg.out).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert not (tmp_path / "int8.float.onnx").exists()  # the float intermediate is not left behind
    # the accuracy written into the file is the file's own, as the daemon runs it
    val = trainer.val_set
    accuracy = float(np.mean(run_onnx(small.path, val.images, small.info).argmax(1) == val.labels))
    assert small.info.val_accuracy == round(accuracy, 4)
    assert isinstance(FlipAveraged(trainer.model), torch.nn.Module)


def test_int8_that_changes_answers_is_refused(tmp_path, monkeypatch):
    import emobridge.train.export as export

    data = write_folders(write_folders(tmp_path / "data", "train", 8), "val", 2, seed=77)
    cfg = config(tmp_path, data, epochs=1)
    Trainer(cfg).run()
    monkeypatch.setattr(export, "INT8_AGREEMENT", 1.01)  # no model can keep more than all its answers
    cfg.int8, cfg.out = True, str(tmp_path / "int8.onnx")
    with pytest.raises(ModelError, match="int8 check failed"):
        Trainer(cfg).export()


def test_export_only_needs_a_trained_run(tmp_path):
    data = write_csv(tmp_path / "fer2013.csv", 6)
    with pytest.raises(UserError, match="best.pt not found: train first"):
        Trainer(config(tmp_path, data, epochs=1)).export()


def test_export_check_catches_a_mismatch(tmp_path):
    from emobridge.perception.model_info import ModelInfo
    from emobridge.train.export import export_onnx
    from emobridge.train.model import EmotionNet

    info = ModelInfo(classes=EMOTIONS)
    images = np.stack([face(i % 7, i) for i in range(8)])
    model = EmotionNet((4, 4, 8, 8)).eval()
    path = export_onnx(model, info, tmp_path / "m.onnx", check_images=images)
    assert check_export(torch.nn.Sequential(model, torch.nn.Softmax(1)), path, info, images) < 1e-4
    with torch.no_grad():
        model.head[-1].bias[0] += 3.0  # PyTorch now disagrees with the exported file
    with pytest.raises(RuntimeError, match="differs from PyTorch"):
        check_export(torch.nn.Sequential(model, torch.nn.Softmax(1)), path, info, images)


def test_the_distillation_recipe_trains_a_teacher_then_a_student_from_a_packed_data_set(tmp_path):
    import os
    import subprocess
    import sys
    import tarfile

    from emobridge.perception.emotion import EmotionClassifier

    data = tmp_path / "fer"
    write_folders(data, "train", per_class=12)
    write_folders(data, "val", per_class=4, seed=5)
    packed = tmp_path / "fer.tar.gz"
    with tarfile.open(packed, "w:gz") as tar:
        tar.add(data / "train", "train")
        tar.add(data / "val", "val")
    script = Path(__file__).parent.parent / "scripts" / "train_distilled"
    env = dict(os.environ, EPOCHS_TEACHER="1", EPOCHS_STUDENT="1", TEACHER_WIDTHS="8,8,16,16", EXPORT="--tta flip",
               PYTHON=sys.executable, DEVICE="cpu", PRECISION="bf16")
    done = subprocess.run([str(script), str(packed), str(tmp_path / "work")], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    teacher = torch.load(tmp_path / "work" / "teacher" / "best.pt", weights_only=False)
    assert teacher["config"]["precision"] == "bf16"
    student = EmotionClassifier(tmp_path / "work" / "student.onnx")
    assert student.info.extra["tta"] == "flip"
    assert student.info.extra["architecture"] == "EmotionNet(32, 48, 96, 192)"
    log = [json.loads(line) for line in (tmp_path / "work" / "student" / "log.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in log] == [1]


def test_webcam_degradations_are_seeded_touch_about_half_the_faces_and_keep_the_range():
    from emobridge.train.trainer import webcam_degrade

    faces = to_tensor(np.stack([face(i % 7, seed=i) for i in range(64)]), torch.device("cpu"))
    first = webcam_degrade(faces, torch.Generator().manual_seed(5))
    again = webcam_degrade(faces, torch.Generator().manual_seed(5))
    assert torch.equal(first, again)
    changed = (first - faces).abs().flatten(1).amax(1) > 1e-3
    assert 16 <= int(changed.sum()) <= 48  # WEBCAM_SHARE of 64, give or take chance
    pixels = first * 0.25 + 0.5
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5


def test_jpeg_blocks_keep_a_high_quality_face_and_coarsen_a_low_one():
    from emobridge.train.trainer import jpeg_like

    pixels = torch.from_numpy(np.stack([face(k, seed=k) for k in range(4)])[:, None].astype(np.float32))
    high = jpeg_like(pixels, torch.full((4,), 100.0))
    low = jpeg_like(pixels, torch.full((4,), 10.0))
    assert float((high - pixels).abs().max()) < 2.0  # rounding only
    assert float((low - pixels).abs().mean()) > 2 * float((high - pixels).abs().mean())


def _fits_own_pixels(out: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Per face: is it brightness/contrast of the face itself or its mirror (outside the erased box), no resampling?"""
    fits = []
    for o, f in zip(out[:, 0], faces[:, 0]):
        kept = o != 0  # the erased box is 0
        residuals = []
        for source in (f, f.flip(-1)):
            a = torch.stack([source[kept], torch.ones_like(source[kept])], 1)
            solution = torch.linalg.lstsq(a, o[kept][:, None]).solution
            residuals.append(float((a @ solution - o[kept][:, None]).abs().max()))
        fits.append(min(residuals) < 1e-3)
    return torch.tensor(fits)


def test_an_unwarped_share_keeps_its_own_pixels_and_the_rest_are_resampled():
    from emobridge.train.trainer import augment

    faces = to_tensor(np.stack([face(i % 7, seed=i) for i in range(32)]), torch.device("cpu"))
    assert int(_fits_own_pixels(augment(faces, torch.Generator().manual_seed(1)), faces).sum()) <= 2
    assert bool(_fits_own_pixels(augment(faces, torch.Generator().manual_seed(1), unwarped=1.0), faces).all())
    half = int(_fits_own_pixels(augment(faces, torch.Generator().manual_seed(1), unwarped=0.5), faces).sum())
    assert 8 <= half <= 24


def test_webcam_augmentation_trains(tmp_path):
    data = write_folders(tmp_path / "data", "train", 8)
    write_folders(data, "val", 2, seed=9)
    cfg = config(tmp_path, data, epochs=1)
    cfg.webcam = True
    Trainer(cfg).run()
    assert json.loads((Path(cfg.workdir) / "log.jsonl").read_text().splitlines()[0])["epoch"] == 1


def test_python_dash_m_train_gives_the_one_line_error_too(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "emobridge.train", str(tmp_path / "nowhere"), "--workdir",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"emobridge: error: data set {tmp_path / 'nowhere'} not found: give a FER2013 folder (train/ + val/ or test/) "
        "or fer2013.csv"]


def test_a_student_learns_from_an_onnx_teacher_and_a_foreign_one_is_refused(tmp_path):
    """The committed members (ONNX files, no PyTorch weights) teach: a linear model stands in for one here."""
    from emobridge.perception.model_info import ModelInfo
    from onnx_models import linear_model

    data = write_csv(tmp_path / "fer2013.csv", 6)
    teacher = linear_model(tmp_path / "teacher.onnx", ModelInfo(classes=EMOTIONS),
                           np.random.default_rng(4).normal(0, 0.05, (48 * 48, 7)))
    cfg = config(tmp_path, data, epochs=1)
    cfg.teacher = str(teacher)
    student = Trainer(cfg)
    x = torch.randn(5, 1, 48, 48)
    expected = EmotionClassifier(teacher).session.run(None, {"face": x.numpy()})[0]
    np.testing.assert_allclose(student.teacher(x).exp().numpy(), np.maximum(expected, 1e-4), rtol=1e-5, atol=1e-7)
    assert student.distill_loss(x, student.teacher(x)) < 1e-4
    loss, _ = student.train_epoch()
    assert np.isfinite(loss)

    foreign = linear_model(tmp_path / "foreign.onnx", ModelInfo(classes=EMOTIONS, mean=0.0, std=1.0))
    cfg.teacher = str(foreign)
    with pytest.raises(UserError, match="reads faces differently"):
        Trainer(cfg)
    cfg.teacher = str(tmp_path / "missing.onnx")
    with pytest.raises(UserError, match="not found"):
        Trainer(cfg)


def test_depths_add_conv_layers_and_the_default_keeps_the_old_layer_names():
    from emobridge.train.model import EmotionNet

    convs = lambda net: [name for name, layer in net.named_modules() if isinstance(layer, torch.nn.Conv2d)]
    # the layout every checkpoint and member before --depths was saved with: a rename would orphan them
    assert convs(EmotionNet((4, 8, 8, 16))) == [f"features.{i}.0" for i in (0, 2, 4, 5, 7, 8)]
    deeper = EmotionNet((4, 8, 8, 16), depths=(1, 2, 3, 2))
    assert len(convs(deeper)) == 8
    assert deeper(torch.zeros(3, 1, 48, 48)).shape == (3, len(EMOTIONS))
    assert deeper.describe() == "EmotionNet(4, 8, 8, 16), depths=(1, 2, 3, 2)"
    assert EmotionNet((4, 8, 8, 16)).describe() == "EmotionNet(4, 8, 8, 16)"
