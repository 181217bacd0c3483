"""Test-time views inside the graph: the face zoomed a little in and out (and mirrored), classified each way, averaged.

Why it pays: every face a model saw in training was resampled by the augmentation (bilinear, at a random scale,
angle and shift), so a raw 48 px face is sharper than anything it learned from, and a face's scale in FER2013
varies by more than the crop can fix. Averaging a few resampled views (scales about 0.93–1.12) gained 0.5–1.4
points of FER2013 val accuracy on every member (models/README.md has the table).

Each view is two fixed 48×48 matrix products, ``L · face · R`` (bilinear zoom about the centre, border pixels
repeated, mirror folded into R), so the views cost about 0.02 ms together and the file still takes one
``session.run`` per face. Needs the ``onnx`` package, not torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UserError

INPUT, OUTPUT = "face", "probabilities"
PREFIX = "views/"
BATCH = PREFIX + "batch"   # every view of every face, view-major: the wrapped model's input
SCALE_RANGE = (0.7, 1.4)   # past these a view cuts off the face or shrinks it into its border


@dataclass(frozen=True)
class View:
    scale: float            # >1 zooms in (the face fills more of the picture)
    mirror: bool = False

    def label(self) -> str:
        return f"{'mirror ' if self.mirror else ''}x{self.scale:g}"


def parse_views(text: str, mirror: bool) -> tuple[View, ...]:
    """``--views 1,0.93,1.12`` (scales) and ``--mirror-views`` → the views, each scale also mirrored if asked."""
    try:
        scales = [float(s) for s in text.split(",")]
    except ValueError:
        raise UserError(f"--views {text!r}: expected zoom factors separated by commas, e.g. 1,0.93,1.12") from None
    low, high = SCALE_RANGE
    if not scales or any(not low <= s <= high for s in scales) or len(set(scales)) != len(scales):
        raise UserError(f"--views {text!r}: give different zoom factors between {low} and {high}, e.g. 1,0.93,1.12")
    return tuple(View(s, m) for s in scales for m in ((False, True) if mirror else (False,)))


def zoom_matrix(size: int, scale: float) -> np.ndarray:
    """Z (size×size) with ``Z @ column`` = the column zoomed by *scale* about its centre, bilinear, edges repeated
    (what ``cv2.warpAffine`` does with ``getRotationMatrix2D(centre, 0, scale)`` and BORDER_REPLICATE)."""
    centre = (size - 1) / 2
    source = np.clip((np.arange(size) - centre) / scale + centre, 0, size - 1)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, size - 1)
    weight = source - low
    matrix = np.zeros((size, size), np.float64)
    np.add.at(matrix, (np.arange(size), low), 1 - weight)
    np.add.at(matrix, (np.arange(size), high), weight)
    return matrix


def view_matrices(view: View, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(L, R) with ``L @ face @ R`` = the view of a size×size face."""
    zoom = zoom_matrix(size, view.scale)
    right = zoom.T[::-1] if view.mirror else zoom.T   # mirror first (reverse the columns), then zoom
    return zoom.astype(np.float32), np.ascontiguousarray(right, np.float32)


def apply_views(faces: np.ndarray, views: tuple[View, ...]) -> np.ndarray:
    """The views the graph makes, in numpy, view-major (K·N × S × S float32): for checking the graph."""
    size = faces.shape[-1]
    out = []
    for view in views:
        left, right = view_matrices(view, size)
        out.append(left @ faces.astype(np.float32) @ right)
    return np.concatenate(out)


def _reduce_mean(opset: int, data: str, out: str, initializers: list) -> onnx.NodeProto:
    # ReduceMean's axes moved from an attribute to an input in opset 18
    if opset >= 18:
        initializers.append(numpy_helper.from_array(np.array([0], np.int64), PREFIX + "axis0"))
        return helper.make_node("ReduceMean", [data, PREFIX + "axis0"], [out], keepdims=0)
    return helper.make_node("ReduceMean", [data], [out], axes=[0], keepdims=0)


def with_views(model: onnx.ModelProto, views: tuple[View, ...], size: int, classes: int) -> onnx.ModelProto:
    """*model* (input ``face`` N×1×S×S, output ``probabilities`` N×*classes*) wrapped so it classifies every view of each
    face and answers with their mean: same input and output, so the runtime needs nothing new."""
    graph = model.graph
    own_input, own_output = graph.input[0].name, graph.output[0].name
    inner_output = PREFIX + "per_view"
    nodes, initializers = [], []
    batches = []
    for k, view in enumerate(views):
        left, right = view_matrices(view, size)
        initializers += [numpy_helper.from_array(left, f"{PREFIX}{k}/left"),
                         numpy_helper.from_array(right, f"{PREFIX}{k}/right")]
        nodes += [helper.make_node("MatMul", [f"{PREFIX}{k}/left", INPUT], [f"{PREFIX}{k}/rows"]),
                  helper.make_node("MatMul", [f"{PREFIX}{k}/rows", f"{PREFIX}{k}/right"], [f"{PREFIX}{k}/face"])]
        batches.append(f"{PREFIX}{k}/face")
    nodes.append(helper.make_node("Concat", batches, [BATCH], axis=0))
    for node in graph.node:
        inner = onnx.NodeProto()
        inner.CopyFrom(node)
        inner.input[:] = [BATCH if name == own_input else name for name in node.input]
        inner.output[:] = [inner_output if name == own_output else name for name in node.output]
        nodes.append(inner)
    initializers.append(numpy_helper.from_array(np.array([len(views), -1, classes], np.int64), PREFIX + "shape"))
    nodes.append(helper.make_node("Reshape", [inner_output, PREFIX + "shape"], [PREFIX + "by_view"]))
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    nodes.append(_reduce_mean(opset, PREFIX + "by_view", OUTPUT, initializers))
    face = _renamed(graph.input[0], INPUT)
    probabilities = _renamed(graph.output[0], OUTPUT)
    wrapped = helper.make_graph(nodes, graph.name + "_views", [face], [probabilities],
                                list(graph.initializer) + initializers, value_info=_per_view(graph))
    out = helper.make_model(wrapped, opset_imports=list(model.opset_import), producer_name="emobridge")
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out


def _per_view(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """The inner graph's shapes, their batch renamed: inside the views a batch is views × faces, and a symbol shared
    with the input's batch tells onnxruntime they are equal (it then reuses a buffer of the wrong size and fails
    once the file runs inside an ensemble)."""
    batch = graph.input[0].type.tensor_type.shape.dim[0].dim_param
    shapes = []
    for value in graph.value_info:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(value)
        dims = copy.type.tensor_type.shape.dim
        if batch and dims and dims[0].dim_param == batch:
            dims[0].dim_param = PREFIX + "views_by_faces"
        shapes.append(copy)
    return shapes


def _renamed(value: onnx.ValueInfoProto, name: str) -> onnx.ValueInfoProto:
    copy = onnx.ValueInfoProto()
    copy.CopyFrom(value)
    copy.name = name
    return copy


def describe(views: tuple[View, ...]) -> str:
    """The metadata's ``tta`` entry: ``views x1, mirror x1, x0.93, …``."""
    return "views " + ", ".join(view.label() for view in views)
