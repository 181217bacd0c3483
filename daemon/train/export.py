"""ONNX export with metadata, checked against PyTorch through onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from ..model_info import ModelInfo

TOLERANCE = 1e-4


class Softmaxed(nn.Module):
    """The shipped graph returns probabilities, so consumers need no post-processing."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).softmax(dim=1)


def export_onnx(model: nn.Module, info: ModelInfo, out: Path, check_images: np.ndarray) -> Path:
    """Write *model* to *out* with *info* as metadata; fail if onnxruntime disagrees with PyTorch."""
    wrapped = Softmaxed(model).eval().cpu()
    size = info.input_size
    dummy = torch.zeros(1, info.channels, size, size)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(wrapped, (dummy,), str(out), input_names=["face"], output_names=["probabilities"],
                      dynamic_axes={"face": {0: "batch"}, "probabilities": {0: "batch"}}, opset_version=17, dynamo=False)
    proto = onnx.load(str(out))
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "emobridge"
    onnx.save(proto, str(out))
    check_export(wrapped, out, info, check_images)
    return out


def check_export(model: nn.Module, path: Path, info: ModelInfo, images: np.ndarray) -> float:
    """Largest absolute difference between PyTorch and onnxruntime probabilities; raises above tolerance."""
    x = ((images.astype(np.float32) / 255.0 - info.mean) / info.std)[:, None]
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    diff = float(np.abs(got - expected).max())
    if diff > TOLERANCE:
        raise RuntimeError(f"ONNX export check failed: onnxruntime differs from PyTorch by {diff:.2e} (> {TOLERANCE})")
    return diff
