"""Seeded, resumable training of the emotion CNN (CPU or CUDA), ending in an ONNX file.

A run lives in a work folder: ``faces.npz`` (decoded data cache), ``log.jsonl``
(one line per epoch), ``last.pt`` (everything needed to resume) and ``best.pt``
(the weights with the best val accuracy so far, selected on val only).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import pickle
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..tools.datasets import FaceSet, load_split
from ..labels import EMOTIONS
from ..tools.metrics import evaluate
from ..perception.emotion import normalise
from ..perception.model_info import ModelInfo
from .config import DEPTHS, TrainConfig
from .model import EmotionNet

# What the network reads. Training prepares faces from it with the runtime's own normalise(), and the
# exported file carries it as metadata, so the two can never disagree.
INPUT = ModelInfo(classes=EMOTIONS)
RUN_FILES = "give the best.pt or last.pt of an earlier training run"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda asked for, but this torch build sees no CUDA GPU: use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:  # torch's message lists every device type it knows
        raise UserError(f"--device {name!r}: expected auto, cpu, cuda or cuda:N") from None


def cached_split(cfg: TrainConfig, split: str) -> FaceSet:
    cache = Path(cfg.workdir) / f"{split}.npz"
    if cache.exists():
        data = np.load(cache)
        return FaceSet(data["images"], data["labels"], str(cache))
    faces = load_split(Path(cfg.data), split)
    np.savez(cache, images=faces.images, labels=faces.labels)
    return faces


def to_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(normalise(images, INPUT)).to(device)


def augment(x: torch.Tensor, generator: torch.Generator, webcam: bool = False, unwarped: float = 0.0) -> torch.Tensor:
    """Random flip, rotation (±12°), scale (0.9–1.1), shift (±10%), contrast and erasing, per batch on the device;
    with *webcam*, a head turned a little (the face narrowed) and webcam-like degradations too. A share *unwarped*
    of the faces keeps its own pixels (flip only): every warped face is resampled, which softens it, and a net
    that only ever saw soft faces reads a sharp one worse."""
    n = x.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=x.device)  # noqa: E731
    if webcam:
        x = webcam_degrade(x, generator)
    angle = (rand(n) - 0.5) * math.radians(24)
    scale = 0.9 + 0.2 * rand(n)
    flip = torch.where(rand(n) < 0.5, -1.0, 1.0)
    shift = (rand(n, 2) - 0.5) * 0.2
    # sampling the source wider than the output narrows the face: grid x is divided by the squeeze
    squeeze = 1.0 / (1.0 - YAW_SQUEEZE * rand(n)) if webcam else torch.ones(n, device=x.device)
    if unwarped > 0:  # drawn only when asked, so runs without it keep their random stream
        keep = rand(n) < unwarped
        angle, scale = angle.masked_fill(keep, 0.0), scale.masked_fill(keep, 1.0)
        shift, squeeze = shift.masked_fill(keep[:, None], 0.0), squeeze.masked_fill(keep, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip * squeeze, -sin * squeeze, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    x = x * (0.8 + 0.4 * rand(n, 1, 1, 1)) + (rand(n, 1, 1, 1) - 0.5) * 0.4
    # random erasing: one box of 10-30% of the side on half the faces
    size = x.shape[-1]
    side = (size * (0.1 + 0.2 * rand(n))).long()
    y0 = (rand(n) * (size - side)).long()
    x0 = (rand(n) * (size - side)).long()
    rows = torch.arange(size, device=x.device)
    in_y = (rows[None, :] >= y0[:, None]) & (rows[None, :] < (y0 + side)[:, None])
    in_x = (rows[None, :] >= x0[:, None]) & (rows[None, :] < (x0 + side)[:, None])
    box = (in_y[:, :, None] & in_x[:, None, :]) & (rand(n) < 0.5)[:, None, None]
    return x.masked_fill(box[:, None], 0.0)


# Webcam-like degradations (issue 16): what a room camera does to a face that FER2013's web photos rarely show.
WEBCAM_SHARE = 0.5           # faces per batch that get them
GAMMA_RANGE = (0.6, 1.6)     # exposure: under- to over-lit
BLUR_SIGMA = 1.2             # px at 48 px, most (defocus, motion)
NOISE_SIGMA = 0.04           # sensor noise, in units of the 0-1 pixel range
JPEG_QUALITY = (25, 90)      # a compressed stream's 8x8 blocks
YAW_SQUEEZE = 0.15           # a head turned a little: the face narrows by up to 15%
# JPEG's luminance table (ITU T.81 Annex K), scaled by quality as libjpeg does
_JPEG_TABLE = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float32)


def _dct_matrix(size: int = 8) -> torch.Tensor:
    k, i = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    d = torch.cos((2 * i + 1) * k * math.pi / (2 * size)) * math.sqrt(2 / size)
    d[0] /= math.sqrt(2)
    return d


def jpeg_like(pixels: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Quantise each 8x8 block's DCT as a JPEG encoder at *quality* (per face) would; *pixels* in 0-255, N×1×H×W."""
    n, _, h, w = pixels.shape
    d = _dct_matrix().to(pixels.device)
    blocks = pixels.reshape(n, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4) - 128.0
    scale = torch.where(quality < 50, 5000.0 / quality, 200.0 - 2.0 * quality) / 100.0
    table = (_JPEG_TABLE.to(pixels.device)[None] * scale[:, None, None]).clamp(min=1.0)[:, None, None]
    coefficients = d @ blocks @ d.T
    blocks = d.T @ (torch.round(coefficients / table) * table) @ d
    return (blocks + 128.0).permute(0, 1, 3, 2, 4).reshape(n, 1, h, w).clamp(0, 255)


def webcam_degrade(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Exposure (gamma), blur, sensor noise and JPEG blocks on a share of the (normalised) faces."""
    n = x.shape[0]
    rand = lambda *shape: torch.rand(*shape, generator=generator, device=x.device)  # noqa: E731
    chosen = (rand(n) < WEBCAM_SHARE)[:, None, None, None]
    pixels = (x * 0.25 + 0.5).clamp(0, 1)  # back to the 0-1 range (the inverse of normalise)
    low, high = GAMMA_RANGE
    gamma = torch.exp(math.log(low) + (math.log(high) - math.log(low)) * rand(n, 1, 1, 1))
    pixels = pixels.clamp(min=1e-4) ** gamma
    taps = torch.arange(-2, 3, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-taps ** 2 / (2 * BLUR_SIGMA ** 2))
    kernel = kernel / kernel.sum()
    blurred = F.conv2d(F.pad(pixels, (2, 2, 0, 0), mode="replicate"), kernel.view(1, 1, 1, 5))
    blurred = F.conv2d(F.pad(blurred, (0, 0, 2, 2), mode="replicate"), kernel.view(1, 1, 5, 1))
    amount = rand(n, 1, 1, 1)  # 0 sharp … 1 the full blur: a blend stands in for a range of sigmas
    pixels = pixels + amount * (blurred - pixels)
    noise = torch.randn(pixels.shape, generator=generator, device=x.device) * NOISE_SIGMA * rand(n, 1, 1, 1)
    pixels = (pixels + noise).clamp(0, 1)
    low_q, high_q = JPEG_QUALITY
    pixels = jpeg_like(pixels * 255.0, low_q + (high_q - low_q) * rand(n)) / 255.0
    return torch.where(chosen, (pixels - 0.5) / 0.25, x)


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, device: torch.device, batch: int = 512) -> np.ndarray:
    model.eval()
    out = [model(to_tensor(images[i:i + batch], device)).float().softmax(1).cpu().numpy() for i in range(0, len(images), batch)]
    return np.concatenate(out)


def load_checkpoint(path: Path, device: torch.device | str, option: str) -> dict:
    """The checkpoint an option names, or a UserError that names the option and the file."""
    if not path.is_file():
        raise UserError(f"{option} {path}: no such file; {RUN_FILES}")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except (pickle.UnpicklingError, EOFError, RuntimeError):  # what torch.load raises for a file it cannot read
        state = None
    if not isinstance(state, dict):
        raise UserError(f"{option} {path} is not a PyTorch checkpoint; {RUN_FILES}")
    return state


def network(cfg: TrainConfig) -> EmotionNet:
    """The untrained network *cfg* describes (its widths, depths and dropout)."""
    return EmotionNet(tuple(cfg.widths), dropout=cfg.dropout, depths=tuple(cfg.depths))


def load_weights(model: nn.Module, weights: dict, path: Path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError:  # torch's message for other layer sizes is many lines long
        raise UserError(f"the weights in {path} do not fit {model.describe()}: "
                        "give the --widths and --depths that run was trained with") from None


class OnnxTeacher:
    """A trained model file to distil from (a member, or a whole ensemble, as committed): run by onnxruntime on
    the student's augmented batch. Its answer is probabilities, so their logarithm stands in for logits
    (the same softmax; the floor keeps an int8 model's exact zeros finite)."""

    FLOOR = 1e-4

    def __init__(self, path: Path, threads: int = 0) -> None:
        from ..perception.emotion import EmotionClassifier

        # the runtime's own loading and checks (metadata, classes, a readable file); its session runs the teacher
        classifier = EmotionClassifier(path, threads=threads)
        info = classifier.info
        if (info.classes, info.input_size, info.channels, info.mean, info.std) != \
                (INPUT.classes, INPUT.input_size, INPUT.channels, INPUT.mean, INPUT.std):
            raise UserError(f"--teacher {path} reads faces differently from the network trained here "
                            "(classes, size or normalisation): give a model trained by emobridge")
        self.session, self.input = classifier.session, classifier.input_name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = self.session.run(None, {self.input: x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(np.log(np.maximum(probabilities, self.FLOOR))).to(x.device)


def load_teacher(path: Path, device: torch.device, threads: int = 0) -> nn.Module | OnnxTeacher:
    """A trained network to distil from, frozen: a run's best.pt (its config says its widths), or an ONNX model
    file (a committed member or ensemble: the accumulated members teach without their PyTorch weights)."""
    if path.suffix == ".onnx":
        if not path.is_file():
            raise UserError(f"--teacher {path} not found: give a best.pt of a training run or an ONNX model file")
        return OnnxTeacher(path, threads)
    state = load_checkpoint(path, device, "--teacher")
    if "weights" not in state or "config" not in state:
        raise UserError(f"--teacher {path} is not a training run's best.pt (weights and config)")
    config = state["config"]
    teacher = EmotionNet(tuple(config["widths"]), dropout=config.get("dropout", 0.3), depths=tuple(config.get("depths", DEPTHS)))
    load_weights(teacher, state["weights"], path)
    return teacher.to(device).eval().requires_grad_(False)


class Trainer:
    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        self.workdir = Path(cfg.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        seed_everything(cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = pick_device(cfg.device)
        self.train_set = cached_split(cfg, "train")
        self.val_set = cached_split(cfg, "val")
        self.model = network(cfg).to(self.device, memory_format=self.memory_format)
        self.ema = copy.deepcopy(self.model).eval()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps = cfg.epochs * math.ceil(len(self.train_set) / cfg.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(self.optimizer, max_lr=cfg.lr, total_steps=steps,
                                                             pct_start=cfg.warmup)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.epoch = 0
        self.best_accuracy = -1.0
        if cfg.init:
            self.load_initial_weights(Path(cfg.init))
        self.teacher = load_teacher(Path(cfg.teacher), self.device, cfg.threads) if cfg.teacher else None

    def load_initial_weights(self, path: Path) -> None:
        state = load_checkpoint(path, self.device, "--init")
        weights = state.get("weights") or state.get("model")
        if weights is None:
            raise UserError(f"--init {path} holds no weights; {RUN_FILES}")
        load_weights(self.model, weights, path)
        self.ema.load_state_dict(weights)
        print(f"starting from the weights in {path}", flush=True)

    @property
    def memory_format(self) -> torch.memory_format:
        # bfloat16 convolutions in oneDNN and cuDNN are fastest with channels last: NHWC, no reorder each layer
        return torch.channels_last if self.cfg.precision == "bf16" else torch.contiguous_format

    def autocast(self) -> torch.autocast:
        """Mixed precision for the training passes only; val figures and the export stay float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.precision == "bf16")

    # --- checkpoints -------------------------------------------------------
    def save(self, path: Path) -> None:
        torch.save({
            "config": asdict(self.cfg), "epoch": self.epoch, "best_accuracy": self.best_accuracy,
            "model": self.model.state_dict(), "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "generator": self.generator.get_state(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "python": random.getstate(),
        }, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)  # atomic: a kill mid-save keeps the previous checkpoint

    def resume(self) -> bool:
        path = self.workdir / "last.pt"
        if not path.exists():
            return False
        state = torch.load(path, map_location=self.device, weights_only=False)
        if state["config"]["epochs"] != self.cfg.epochs:
            raise UserError(f"{path} belongs to a {state['config']['epochs']}-epoch run (its schedule is fixed): "
                            f"use --epochs {state['config']['epochs']} to resume, or a new --workdir")
        load_weights(self.model, state["model"], path)
        self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.generator.set_state(state["generator"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        self.epoch, self.best_accuracy = state["epoch"], state["best_accuracy"]
        print(f"resumed from {path} after epoch {self.epoch} (best val accuracy {self.best_accuracy:.4f})", flush=True)
        return True

    # --- one epoch ---------------------------------------------------------
    def train_epoch(self) -> tuple[float, float]:
        self.model.train()
        order = torch.randperm(len(self.train_set), generator=torch.Generator().manual_seed(self.cfg.seed * 1000 + self.epoch))
        images, labels = self.train_set.images, torch.from_numpy(self.train_set.labels)
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, len(order), self.cfg.batch_size):
            idx = order[start:start + self.cfg.batch_size]
            x = augment(to_tensor(images[idx.numpy()], self.device), self.generator, self.cfg.webcam, self.cfg.unwarped)
            y = labels[idx].to(self.device)
            with self.autocast():
                logits, loss = self.forward_loss(x.contiguous(memory_format=self.memory_format), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.update_ema()
            total_loss += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        return total_loss / seen, correct / seen

    def forward_loss(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        smoothing = self.cfg.label_smoothing
        if self.cfg.mixup <= 0:
            logits = self.model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=smoothing)
        else:
            # mixup: blend pairs of faces and their labels, a guard against FER2013's noisy labels
            lam = float(np.random.beta(self.cfg.mixup, self.cfg.mixup))
            perm = torch.randperm(len(y), generator=self.generator, device=x.device)
            x = lam * x + (1 - lam) * x[perm]
            logits = self.model(x)
            loss = lam * F.cross_entropy(logits, y, label_smoothing=smoothing) + \
                (1 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=smoothing)
        if self.teacher is not None:
            loss = (1 - self.cfg.distill_weight) * loss + self.cfg.distill_weight * self.distill_loss(x, logits)
        return logits, loss

    def distill_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """KL divergence to the teacher's softened output on the same (augmented) faces (Hinton et al.)."""
        t = self.cfg.distill_temperature
        with torch.no_grad():
            target = F.softmax(self.teacher(x) / t, dim=1)
        return F.kl_div(F.log_softmax(logits / t, dim=1), target, reduction="batchmean") * t * t

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = self.cfg.ema_decay
        for e, p in zip(self.ema.state_dict().values(), self.model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(p, alpha=1 - decay)
            else:
                e.copy_(p)

    def run(self, stop_after: int | None = None) -> Path | None:
        """Train to the planned epoch count (or pause after *stop_after* epochs), then export."""
        self.resume()
        log = (self.workdir / "log.jsonl").open("a")
        while self.epoch < min(self.cfg.epochs, stop_after or self.cfg.epochs):
            started = time.time()
            loss, train_acc = self.train_epoch()
            self.epoch += 1
            # The weight average lags behind early on, while the learning rate is high; keep whichever is better.
            reports = {name: evaluate(self.val_set.labels, predict(net, self.val_set.images, self.device).argmax(1))
                       for name, net in (("ema", self.ema), ("raw", self.model))}
            which = max(reports, key=lambda name: reports[name].accuracy)
            report = reports[which]
            row = {"epoch": self.epoch, "train_loss": round(loss, 4), "train_acc": round(train_acc, 4),
                   "val_acc": round(report.accuracy, 4), "val_macro_f1": round(report.macro_f1, 4), "weights": which,
                   "val_acc_raw": round(reports["raw"].accuracy, 4), "val_acc_ema": round(reports["ema"].accuracy, 4),
                   "lr": self.scheduler.get_last_lr()[0], "seconds": round(time.time() - started, 1)}
            print(json.dumps(row), flush=True)
            log.write(json.dumps(row) + "\n")
            log.flush()
            if report.accuracy > self.best_accuracy:
                self.best_accuracy = report.accuracy
                weights = (self.ema if which == "ema" else self.model).state_dict()
                torch.save({"weights": weights, "which": which, "epoch": self.epoch, "config": asdict(self.cfg)},
                           self.workdir / "best.pt")
            self.save(self.workdir / "last.pt")
        log.close()
        if self.epoch < self.cfg.epochs:
            print(f"paused after epoch {self.epoch} of {self.cfg.epochs}; run the same command again to resume", flush=True)
            return None
        return self.export()

    def export(self) -> Path:
        """The best weights to ONNX (with the flip and int8 options), its val figures measured on the file itself."""
        from .export import export_onnx, quantize_int8, run_onnx, write_metadata

        path = self.workdir / "best.pt"
        if not path.exists():
            raise UserError(f"{path} not found: train first (the same command without --export-only)")
        best = torch.load(path, map_location="cpu", weights_only=False)
        model = network(self.cfg)
        load_weights(model, best["weights"], path)
        info = dataclasses.replace(
            INPUT,
            training_data=f"FER2013 train ({len(self.train_set)} faces), selected on val epoch {best['epoch']}",
            extra={"architecture": model.describe(), "epochs": str(self.cfg.epochs),
                   "seed": str(self.cfg.seed), "tta": self.cfg.tta, "weights": "int8" if self.cfg.int8 else "float32"},
        )
        out = Path(self.cfg.out)
        fp32 = out.with_suffix(".float.onnx") if self.cfg.int8 else out
        export_onnx(model, info, fp32, check_images=self.val_set.images[:256], tta=self.cfg.tta)
        if self.cfg.int8:
            count = min(512, len(self.train_set))  # calibration faces: enough to set each layer's int8 range
            picks = np.random.default_rng(self.cfg.seed).choice(len(self.train_set), count, replace=False)
            agreement = quantize_int8(fp32, out, info, self.train_set.images[np.sort(picks)], self.val_set.images[:1024])
            fp32.unlink()
            print(f"int8 keeps the top class of {agreement:.1%} of 1024 val faces", flush=True)
        report = evaluate(self.val_set.labels, run_onnx(out, self.val_set.images, info).argmax(1))
        write_metadata(out, dataclasses.replace(info, val_accuracy=round(report.accuracy, 4),
                                                val_macro_f1=round(report.macro_f1, 4)))
        print(f"exported {out} (val accuracy {report.accuracy:.4f}, macro-F1 {report.macro_f1:.4f}, epoch {best['epoch']}, "
              f"tta {self.cfg.tta}, {'int8' if self.cfg.int8 else 'float32'})", flush=True)
        return out
