"""The resolved mapping as commented YAML (``emobridge check-mapping``)."""

from __future__ import annotations

from typing import Any

import yaml

from ..labels import EMOTIONS
from .model import _NOTE_SPELLING, _SMOOTHING_KEYS, ControlSpec, EmotionStyle, Mapping, PartConfig, _number


def describe_mapping(mapping: Mapping) -> str:
    """The resolved mapping as commented YAML: every key with the value in force, defaults filled in.

    The text is itself a stand-alone mapping file (``extends: none``) that loads to an equal mapping.
    """
    def emotion(style: EmotionStyle) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "tempo": [_number(v) for v in style.tempo], "mode": style.mode, "progression": list(style.progression),
            "pitch_range": list(style.pitch_range), "velocity": list(style.velocity),
            "density": _number(style.density), "rhythm": style.rhythm,
            "articulation": _number(style.articulation), "leap": _number(style.leap),
        }
        if style.tonic is not None:
            entry["key"] = _NOTE_SPELLING[style.tonic]
        return entry

    def part(config: PartConfig) -> dict[str, Any]:
        entry: dict[str, Any] = {"channel": config.channel + 1, "enabled": config.enabled}
        if config.name != "drums":
            entry["octave"] = config.octave
        entry["velocity_scale"] = _number(config.velocity_scale)
        if config.name != "drums":
            entry["articulation"] = _number(config.articulation)
        entry["program"] = None if config.program is None else config.program + 1
        entry["bank"] = config.bank
        return entry

    def control(spec: ControlSpec) -> dict[str, Any]:
        return {"source": spec.source, "cc": spec.cc, "channel": spec.channel + 1,
                "range": [_number(v) for v in spec.range], "out": list(spec.out), "curve": spec.curve,
                "steps": spec.steps, "rate": _number(spec.rate)}

    t, h, s, f = mapping.transition, mapping.humanize, mapping.smoothing, mapping.faces
    data = {
        "extends": "none",
        "key": _NOTE_SPELLING[mapping.tonic],
        "beats_per_bar": mapping.beats_per_bar,
        "transition": {"tempo_glide_beats": t.tempo_glide_beats, "change_at": t.change_at, "blend": t.blend},
        "humanize": {"timing_ms": _number(h.timing_ms), "velocity": _number(h.velocity)},
        "emotions": {name: emotion(mapping.emotions[name]) for name in EMOTIONS},
        "parts": {config.name: part(config) for config in mapping.parts},
        "cc": [control(spec) for spec in mapping.controls],
        "smoothing": {key: getattr(s, key) if key == "no_face" else _number(getattr(s, key)) for key in _SMOOTHING_KEYS},
        "osc": [spec.describe() for spec in mapping.osc],
        "faces": {"follow": f.follow, "max": f.max_faces, "channels": [c + 1 for c in f.channels],
                  "octave": f.octave, "velocity_scale": _number(f.velocity_scale),
                  "program": None if f.program is None else f.program + 1},
    }
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    channels = ", ".join(str(c + 1) for c in mapping.channels())
    return (f"# resolved mapping from {mapping.source}: every key, defaults filled in\n"
            f"# enabled parts play on channels {channels}\n{body}")
