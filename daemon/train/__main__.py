"""``emobridge train`` (also ``python -m emobridge.train``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from ..errors import EmobridgeError
from .config import TrainConfig


def parse_counts(text: str) -> tuple[int, ...]:
    """--widths 32,48,96,192 -> (32, 48, 96, 192), --depths likewise; anything else is an argparse error naming the option."""
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 32,48,96,192; got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = {f.name: f.default for f in fields(TrainConfig)}
    parser.add_argument("data", help="FER2013: a folder with train/ and val/ (or Kaggle's test/), or fer2013.csv")
    parser.add_argument("--out", default="models/emotion.onnx", help="ONNX file to write (default %(default)s)")
    parser.add_argument("--workdir", default=defaults["workdir"], help="checkpoints and per-epoch log; a rerun resumes here")
    parser.add_argument("--epochs", type=int, default=defaults["epochs"])
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--lr", type=float, default=defaults["lr"], help="peak learning rate of the one-cycle schedule")
    parser.add_argument("--widths", type=parse_counts, default=",".join(map(str, defaults["widths"])),
                        help="channels of the four conv stages")
    parser.add_argument("--depths", type=parse_counts, default=",".join(map(str, defaults["depths"])),
                        help="conv layers in each of the four stages (default %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults["seed"])
    parser.add_argument("--device", default=defaults["device"], help="auto, cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    parser.add_argument("--init", default="", help="start from the weights in this checkpoint (best.pt or last.pt of an earlier run)")
    parser.add_argument("--warmup", type=float, default=defaults["warmup"], help="share of steps rising to the peak rate (default %(default)s)")
    parser.add_argument("--mixup", type=float, default=defaults["mixup"], help="mixup alpha, 0 for none (default %(default)s)")
    parser.add_argument("--webcam-aug", action="store_true",
                        help="augment with what a webcam does too: exposure, blur, noise, JPEG blocks, small head turns")
    parser.add_argument("--unwarped", type=float, default=defaults["unwarped"],
                        help="share of faces per batch kept at their own pixels, flip only (default %(default)s): "
                             "the rest are resampled by the warp, which softens them")
    parser.add_argument("--teacher", default="", help="distil from this bigger run's best.pt, or from an ONNX model (a member or an ensemble)")
    parser.add_argument("--distill-weight", type=float, default=defaults["distill_weight"],
                        help="share of the loss that follows the teacher (default %(default)s)")
    parser.add_argument("--tta", choices=("none", "flip"), default=defaults["tta"],
                        help="flip: the exported model also reads the mirrored face and averages (default %(default)s)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default=defaults["precision"],
                        help="bf16: train in bfloat16 with channels-last tensors, about twice as fast on a CPU with "
                             "AVX-512 BF16 or AMX, or on a recent GPU (default %(default)s)")
    parser.add_argument("--int8", action="store_true", help="export int8 weights (static quantisation, ~2.5x faster)")
    parser.add_argument("--export-only", action="store_true",
                        help="skip training: export the work folder's best.pt again (e.g. with --tta or --int8)")
    parser.add_argument("--stop-after", type=int, help="pause after this many epochs (resume later with the same command)")


def run(args: argparse.Namespace) -> int:
    from .trainer import Trainer

    cfg = TrainConfig(data=args.data, out=args.out, workdir=args.workdir, epochs=args.epochs, batch_size=args.batch_size,
                      lr=args.lr, widths=args.widths, depths=args.depths, seed=args.seed,
                      device=args.device, threads=args.threads, init=args.init, warmup=args.warmup,
                      mixup=args.mixup, webcam=args.webcam_aug, unwarped=args.unwarped, teacher=args.teacher, distill_weight=args.distill_weight,
                      tta=args.tta, int8=args.int8, precision=args.precision)
    trainer = Trainer(cfg)
    if args.export_only:
        trainer.export()
    else:
        trainer.run(stop_after=args.stop_after)
    return 0


def main() -> int:
    """``python -m emobridge.train``: the same command, and the same one-line errors, as ``emobridge train``."""
    parser = argparse.ArgumentParser(prog="emobridge train", description="Train the emotion CNN and export it to ONNX.")
    add_arguments(parser)
    try:
        return run(parser.parse_args())
    except EmobridgeError as error:
        print(f"emobridge: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
