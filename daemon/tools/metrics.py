"""Classification figures for the emotion model, in plain numpy."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..labels import EMOTIONS


@dataclass(frozen=True)
class ClassReport:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Evaluation:
    """Accuracy, macro-F1, per-class figures and the confusion matrix (rows = truth)."""

    accuracy: float
    macro_f1: float
    n: int
    per_class: dict[str, ClassReport]
    confusion: list[list[int]] = field(repr=False)

    def to_json(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n": self.n,
            "classes": list(EMOTIONS),
            "per_class": {k: vars(v) for k, v in self.per_class.items()},
            "confusion": self.confusion,
        }

    def to_text(self) -> str:
        lines = [f"n={self.n}  accuracy={self.accuracy:.4f}  macro-F1={self.macro_f1:.4f}", "",
                 f"{'class':<9} {'prec':>6} {'recall':>6} {'F1':>6} {'n':>5}"]
        for name, r in self.per_class.items():
            lines.append(f"{name:<9} {r.precision:6.3f} {r.recall:6.3f} {r.f1:6.3f} {r.support:5d}")
        lines += ["", "confusion (rows = true, columns = predicted):", " " * 9 + "".join(f"{n[:5]:>6}" for n in EMOTIONS)]
        for name, row in zip(EMOTIONS, self.confusion):
            lines.append(f"{name:<9}" + "".join(f"{v:6d}" for v in row))
        return "\n".join(lines)


def evaluate(true: np.ndarray, predicted: np.ndarray, n_classes: int = len(EMOTIONS)) -> Evaluation:
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (true, predicted), 1)
    tp = np.diag(confusion).astype(float)
    support = confusion.sum(axis=1)
    predicted_count = confusion.sum(axis=0)
    precision = np.divide(tp, predicted_count, out=np.zeros_like(tp), where=predicted_count > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    present = support > 0
    per_class = {
        name: ClassReport(float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
        for i, name in enumerate(EMOTIONS[:n_classes])
    }
    n = int(support.sum())
    return Evaluation(
        accuracy=float(tp.sum() / max(n, 1)),
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        n=n,
        per_class=per_class,
        confusion=confusion.tolist(),
    )
