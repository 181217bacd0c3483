"""What an emotion model says about itself, stored as ONNX metadata.

The runtime reads class order, input size, channels and normalisation from the
model file, never from code, so a retrained or third-party model drops in.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from ..errors import ModelError

PREFIX = "emobridge."


@dataclass(frozen=True)
class ModelInfo:
    classes: tuple[str, ...]
    input_size: int = 48
    channels: int = 1
    mean: float = 0.5  # applied to pixels scaled to 0..1: (x/255 - mean) / std
    std: float = 0.25
    training_data: str = ""
    val_accuracy: float | None = None
    val_macro_f1: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """Flat string map for ONNX ``metadata_props`` (values JSON-encoded)."""
        data = asdict(self)
        extra = data.pop("extra")
        meta = {PREFIX + key: json.dumps(value) for key, value in data.items()}
        meta.update({PREFIX + key: value for key, value in extra.items()})
        return meta

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str = "model") -> "ModelInfo":
        known = {name for name in cls.__dataclass_fields__ if name != "extra"}
        values, extra = {}, {}
        for key, raw in meta.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):]
            if name in known:
                values[name] = _decoded(raw, key, source)
            else:
                extra[name] = raw
        if "classes" not in values:
            raise ModelError(f"{source} has no '{PREFIX}classes' metadata: export it with 'emobridge train' or add the class list")
        values["classes"] = tuple(values["classes"])
        return cls(**values, extra=extra)


def _decoded(raw: str, key: str, source: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ModelError(f"{source}: metadata {key} is not JSON ({raw[:40]!r}): export the model again") from None
