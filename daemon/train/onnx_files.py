"""Torch-free helpers for the ONNX files training writes: their metadata, and running them as the daemon does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from ..perception.emotion import normalise as normalised
from ..perception.model_info import ModelInfo

__all__ = ["run_onnx", "write_metadata"]


def write_metadata(path: Path, info: ModelInfo) -> None:
    """Replace the file's emobridge metadata with *info*'s."""
    proto = onnx.load(str(path))
    kept = [(p.key, p.value) for p in proto.metadata_props if not p.key.startswith("emobridge.")]
    del proto.metadata_props[:]
    for key, value in kept + list(info.to_metadata().items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "emobridge"
    onnx.save(proto, str(path))


def run_onnx(path: Path, images: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Probabilities from *path* run as the daemon runs it (one thread: int8 kernels round differently on more)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: normalised(images[i:i + 256], info)})[0]
                           for i in range(0, len(images), 256)])
