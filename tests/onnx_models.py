"""Small ONNX models built with onnx.helper, to test the runtime without torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from emobridge.perception.model_info import ModelInfo


def linear_model(path: Path, info: ModelInfo | None, weights: np.ndarray | None = None) -> Path:
    """face (N×1×S×S) → flatten → matmul → softmax, with *info* as metadata."""
    size = info.input_size if info else 48
    n_classes = len(info.classes) if info else 7
    w = weights if weights is not None else np.random.default_rng(0).normal(0, 0.01, (size * size, n_classes))
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["face"], ["flat"], axis=1),
         helper.make_node("MatMul", ["flat", "w"], ["logits"]),
         helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)],
        "linear",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["batch", 1, size, size])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", n_classes])],
        [numpy_helper.from_array(w.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (info.to_metadata() if info else {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path
