"""Training settings, importable without torch (the CLI builds its options from them)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError


DEPTHS = (1, 1, 2, 2)  # conv layers at 48, 24, 12 and 6 pixels: every network trained before --depths existed


@dataclass
class TrainConfig:
    data: str
    out: str
    workdir: str = "runs/emotion"
    epochs: int = 40
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    widths: tuple[int, ...] = (32, 48, 96, 192)
    depths: tuple[int, ...] = DEPTHS
    dropout: float = 0.3
    ema_decay: float = 0.998
    seed: int = 1
    device: str = "auto"
    threads: int = 0
    init: str = ""          # start from these weights (a best.pt or last.pt), e.g. to fine-tune with a new schedule
    warmup: float = 0.15     # share of the steps spent rising to the peak learning rate
    mixup: float = 0.0       # mixup alpha; 0 turns it off
    webcam: bool = False     # webcam-like augmentation as well: exposure, blur, noise, JPEG blocks, a head turned a little
    unwarped: float = 0.0    # share of faces per batch left unresampled (flip only): sharp faces, as val and crops are
    teacher: str = ""        # distil from this run's weights (a best.pt, any widths) as well as the labels
    distill_weight: float = 0.7   # share of the loss that follows the teacher
    distill_temperature: float = 4.0  # softens both distributions so the teacher's second choices count
    tta: str = "none"        # "flip": the exported graph averages the face and its mirror image
    int8: bool = False       # export static int8 weights (about 2.5x faster on a CPU)
    precision: str = "fp32"  # "bf16": the forward and backward passes in bfloat16 (weights, BN and loss stay fp32)

    def __post_init__(self) -> None:
        """Refuse what argparse cannot check, naming the option, before any data is read."""
        checks = (
            ("--epochs", self.epochs, self.epochs >= 1, "at least 1"),
            ("--batch-size", self.batch_size, self.batch_size >= 1, "at least 1"),
            ("--lr", self.lr, self.lr > 0, "above 0"),
            ("--widths", self.widths, len(self.widths) == 4 and min(self.widths) >= 1,
             "four channel counts of at least 1, e.g. 32,48,96,192"),
            ("--depths", self.depths, len(self.depths) == 4 and min(self.depths) >= 1,
             "four layer counts of at least 1, e.g. 1,2,3,2"),
            ("--threads", self.threads, self.threads >= 0, "0 (torch's default) or more"),
            ("--warmup", self.warmup, 0 < self.warmup < 1, "a share between 0 and 1"),
            ("--mixup", self.mixup, self.mixup >= 0, "0 (off) or more"),
            ("--unwarped", self.unwarped, 0 <= self.unwarped <= 1, "a share from 0 to 1"),
            ("--distill-weight", self.distill_weight, 0 <= self.distill_weight <= 1, "from 0 to 1"),
            ("--precision", self.precision, self.precision in ("fp32", "bf16"), "fp32 or bf16"),
        )
        for option, value, ok, allowed in checks:
            if not ok:
                raise UserError(f"{option} must be {allowed}, got {value}")
