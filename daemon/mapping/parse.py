"""Checking YAML into the model: one :class:`MappingError` line per bad file, naming the key and what is allowed.

A file is merged over the packaged default (``extends: default``, the default), so it only
needs the keys it changes; ``extends: none`` makes a file stand alone, and then every emotion
must be given.
"""

from __future__ import annotations

import copy
import importlib.resources
import reprlib
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import yaml

from ..labels import EMOTIONS
from ..theory import MODES, ROMAN_HELP, parse_note_name, parse_roman
from .osc_targets import targets_from_yaml
from ..labels import NO_FACE_POLICIES
from ..perception.smoothing import SmoothingConfig
from ..labels import FOLLOW_MODES
from ..errors import MappingError
from .model import (BLENDS, CC_SOURCES, CHANGE_AT, CURVES, DEFAULT_SOURCE, PART_NAMES, RHYTHMS, ControlSpec,
                    EmotionStyle, FacesConfig, Humanize, Mapping, PartConfig, Transition, _CC_KEYS, _CC_REQUIRED,
                    _DRUM_KEYS, _EMOTION_DEFAULTS, _EMOTION_KEYS, _EMOTION_REQUIRED, _FACES_KEYS, _HUMANIZE_KEYS,
                    _PART_DEFAULTS, _PART_KEYS, _SMOOTHING_KEYS, _TOP_KEYS, _TRANSITION_KEYS, _number)


def parse_mapping(text: str, source: str) -> Mapping:
    """Check mapping *text* (read from *source*, named in errors) and build the :class:`Mapping`."""
    raw = _read_yaml(text, source)
    if isinstance(raw.get("faces"), str):  # the short form, faces: each
        raw["faces"] = {"follow": raw["faces"]}
    extends = raw.pop("extends", "default")
    if extends == "default":
        raw = _merge(_default_raw(), raw, source, "")
    elif extends != "none":
        raise MappingError(source, "extends", f"got {_show(extends)}",
                           "default (merge over the packaged default) or none (stand-alone file)")
    return _Builder(source).mapping(raw)


@lru_cache(maxsize=1)
def default_mapping_text() -> str:
    return importlib.resources.files("emobridge.mappings").joinpath("default.yaml").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _default_raw_cached() -> dict[str, Any]:
    raw = _read_yaml(default_mapping_text(), DEFAULT_SOURCE)
    raw.pop("extends", None)
    return raw


def _default_raw() -> dict[str, Any]:
    return copy.deepcopy(_default_raw_cached())


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise MappingError(source, where, f"invalid YAML ({problem})",
                           "YAML syntax: 'key: value' lines, lists as [a, b]") from None
    if raw is None:
        raise MappingError(source, "(top level)", "the file is empty", f"a mapping with keys {', '.join(_TOP_KEYS)}")
    if not isinstance(raw, dict):
        raise MappingError(source, "(top level)", f"expected a mapping, got {_show(raw)}",
                           f"a mapping with keys {', '.join(_TOP_KEYS)}")
    return raw


def _merge(base: dict[str, Any], override: dict[str, Any], source: str, path: str) -> dict[str, Any]:
    """*override* laid over *base*: nested mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        key_path = f"{path}.{key}" if path else str(key)
        if isinstance(base.get(key), dict):
            if not isinstance(value, dict):
                raise MappingError(source, key_path, f"expected a mapping, got {_show(value)}",
                                   f"keys {', '.join(map(str, base[key]))}")
            merged[key] = _merge(base[key], value, source, key_path)
        else:
            merged[key] = value
    return merged


def _show(value: Any) -> str:
    return reprlib.repr(value)


class _Builder:
    """Checks raw YAML data key by key and turns it into the dataclasses."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, problem: str, allowed: str) -> MappingError:
        return MappingError(self.source, path, problem, allowed)

    def mapping(self, raw: dict[str, Any]) -> Mapping:
        self.keys(raw, "(top level)", "", _TOP_KEYS, ["emotions"])
        beats = self.integer(raw.get("beats_per_bar", 4), "beats_per_bar", 2, 12)
        emotions_raw = self.table(raw["emotions"], "emotions", EMOTIONS)
        self.keys(emotions_raw, "emotions", "emotions.", EMOTIONS, EMOTIONS)
        emotions = {name: self.emotion(emotions_raw[name], f"emotions.{name}", beats) for name in EMOTIONS}
        parts = self.parts(raw.get("parts", {}))
        self.check_registers(parts, emotions)
        return Mapping(self.tonic(raw.get("key", "C"), "key"), beats, emotions, parts, self.source,
                       transition=self.transition(raw.get("transition", {})),
                       humanize=self.humanize(raw.get("humanize", {})),
                       controls=self.controls(raw.get("cc", [])),
                       smoothing=self.smoothing(raw.get("smoothing", {})),
                       osc=tuple(targets_from_yaml(raw.get("osc", []), self.source)),
                       faces=self.faces(raw.get("faces", {}), parts, emotions))

    def faces(self, raw: Any, parts: tuple[PartConfig, ...], emotions: dict[str, EmotionStyle]) -> FacesConfig:
        raw = self.table(raw, "faces", _FACES_KEYS)
        self.keys(raw, "faces", "faces.", _FACES_KEYS, [])
        default = FacesConfig()
        channels = raw.get("channels", [c + 1 for c in default.channels])
        if not isinstance(channels, list) or not 1 <= len(channels) <= 16:
            raise self.fail("faces.channels", f"expected a list of 1 to 16 channels, got {_show(channels)}",
                            "MIDI channels 1-16, one per face voice, e.g. [5, 6, 7, 8]")
        program = raw.get("program")
        config = FacesConfig(
            follow=self.choice(raw.get("follow", default.follow), "faces.follow", FOLLOW_MODES),
            max_faces=self.integer(raw.get("max", default.max_faces), "faces.max", 1, 8),
            channels=tuple(self.integer(c, f"faces.channels[{i}]", 1, 16) - 1 for i, c in enumerate(channels)),
            octave=self.integer(raw.get("octave", default.octave), "faces.octave", -4, 4),
            velocity_scale=self.number(raw.get("velocity_scale", default.velocity_scale), "faces.velocity_scale",
                                       0.0, 2.0, "a factor from 0 to 2"),
            program=None if program is None else self.integer(program, "faces.program", 1, 128) - 1,
        )
        self.check_voice_channels(config, parts)
        self.check_registers(config.voice_parts(), emotions, "faces.octave")
        return config

    def check_voice_channels(self, config: FacesConfig, parts: tuple[PartConfig, ...]) -> None:
        """With faces: each, every voice needs a channel of its own, apart from the enabled parts'."""
        seen: dict[int, str] = {part.channel: f"parts.{part.name}" for part in parts if part.enabled}
        if config.follow != "each":
            return
        for index, channel in enumerate(config.channels):
            if channel in seen:
                raise self.fail(f"faces.channels[{index}]", f"channel {channel + 1} is also used by {seen[channel]}",
                                "channels 1-16 that no enabled part and no other face voice uses")
            seen[channel] = "another face voice"

    def smoothing(self, raw: Any) -> SmoothingConfig:
        raw = self.table(raw, "smoothing", _SMOOTHING_KEYS)
        self.keys(raw, "smoothing", "smoothing.", _SMOOTHING_KEYS, [])
        default = SmoothingConfig()

        def seconds(key: str, low: float, high: float) -> float:
            return self.number(raw.get(key, getattr(default, key)), f"smoothing.{key}", low, high,
                               f"seconds from {_number(low)} to {_number(high)}")

        return SmoothingConfig(
            attack=seconds("attack", 0.0, 10.0),
            release=seconds("release", 0.0, 10.0),
            hysteresis=self.number(raw.get("hysteresis", default.hysteresis), "smoothing.hysteresis", 0.0, 0.5,
                                   "a probability margin from 0 (none) to 0.5"),
            confirm=seconds("confirm", 0.0, 5.0),
            min_hold=seconds("min_hold", 0.0, 30.0),
            no_face_fade=seconds("no_face_fade", 0.0, 60.0),
            no_face=self.choice(raw.get("no_face", default.no_face), "smoothing.no_face", NO_FACE_POLICIES),
        )

    def transition(self, raw: Any) -> Transition:
        raw = self.table(raw, "transition", _TRANSITION_KEYS)
        self.keys(raw, "transition", "transition.", _TRANSITION_KEYS, [])
        default = Transition()
        return Transition(
            tempo_glide_beats=self.integer(raw.get("tempo_glide_beats", default.tempo_glide_beats),
                                           "transition.tempo_glide_beats", 0, 64),
            change_at=self.choice(raw.get("change_at", default.change_at), "transition.change_at", CHANGE_AT),
            blend=self.choice(raw.get("blend", default.blend), "transition.blend", BLENDS),
        )

    def humanize(self, raw: Any) -> Humanize:
        raw = self.table(raw, "humanize", _HUMANIZE_KEYS)
        self.keys(raw, "humanize", "humanize.", _HUMANIZE_KEYS, [])
        return Humanize(
            timing_ms=self.number(raw.get("timing_ms", 0), "humanize.timing_ms", 0, 50,
                                  "milliseconds from 0 (exact grid) to 50"),
            velocity=self.number(raw.get("velocity", 0), "humanize.velocity", 0, 30,
                                 "velocity steps from 0 (exact) to 30"),
        )

    def controls(self, raw: Any) -> tuple[ControlSpec, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail("cc", f"expected a list, got {_show(raw)}",
                            "a list of entries {source, cc, channel, range, out, curve, steps, rate}")
        return tuple(self.control(entry, f"cc[{index}]") for index, entry in enumerate(raw))

    def control(self, raw: Any, path: str) -> ControlSpec:
        raw = self.table(raw, path, _CC_KEYS)
        self.keys(raw, path, f"{path}.", _CC_KEYS, _CC_REQUIRED)
        source = self.choice(raw["source"], f"{path}.source", tuple(CC_SOURCES))
        low, high = CC_SOURCES[source]
        span = self.pair(raw.get("range", [low, high]), f"{path}.range", -1000, 1000, "source",
                         integer=False, ordered=False)
        if span[0] == span[1]:
            raise self.fail(f"{path}.range", f"low and high are both {span[0]}", "two different source values")
        out = self.pair(raw.get("out", [0, 127]), f"{path}.out", 0, 127, "CC value", ordered=False)
        return ControlSpec(
            source=source,
            cc=self.integer(raw["cc"], f"{path}.cc", 0, 127),
            channel=self.integer(raw["channel"], f"{path}.channel", 1, 16) - 1,
            range=(float(span[0]), float(span[1])),
            out=(int(out[0]), int(out[1])),
            curve=self.choice(raw.get("curve", "linear"), f"{path}.curve", CURVES),
            steps=self.integer(raw.get("steps", 4), f"{path}.steps", 2, 128),
            rate=self.number(raw.get("rate", 20), f"{path}.rate", 0.1, 1000,
                             "messages per second, 0.1 to 1000"),
        )

    def emotion(self, raw: Any, path: str, beats: int) -> EmotionStyle:
        raw = self.table(raw, path, _EMOTION_KEYS)
        self.keys(raw, path, f"{path}.", _EMOTION_KEYS, _EMOTION_REQUIRED)
        value = {**_EMOTION_DEFAULTS, **raw}
        low, high = self.pair(value["tempo"], f"{path}.tempo", 20, 300, "BPM", integer=False)
        return EmotionStyle(
            tempo=(float(low), float(high)),
            mode=self.choice(value["mode"], f"{path}.mode", tuple(MODES)),
            progression=self.progression(value["progression"], f"{path}.progression"),
            pitch_range=self.pitch_range(value["pitch_range"], f"{path}.pitch_range"),
            velocity=self.pair(value["velocity"], f"{path}.velocity", 1, 127, "MIDI velocity"),
            density=self.number(value["density"], f"{path}.density", 1, beats * 4,
                                f"melody notes per bar, 1 to {beats * 4} (one per sixteenth)"),
            rhythm=self.choice(value["rhythm"], f"{path}.rhythm", RHYTHMS),
            articulation=self.number(value["articulation"], f"{path}.articulation", 0.05, 1.0,
                                     "0.05 (very short) to 1 (legato)"),
            leap=self.number(value["leap"], f"{path}.leap", 0.0, 1.0, "a probability from 0 to 1"),
            tonic=None if value.get("key") is None else self.tonic(value["key"], f"{path}.key"),
        )

    def parts(self, raw: Any) -> tuple[PartConfig, ...]:
        raw = self.table(raw, "parts", PART_NAMES)
        self.keys(raw, "parts", "parts.", PART_NAMES, [])
        parts = tuple(self.part(name, raw.get(name, {})) for name in PART_NAMES)
        enabled = [part for part in parts if part.enabled]
        if not enabled:
            raise self.fail("parts", "no part is enabled", "at least one part with enabled: true")
        for index, part in enumerate(enabled):
            other = next((o for o in enabled[:index] if o.channel == part.channel), None)
            if other:
                raise self.fail(f"parts.{part.name}.channel",
                                f"channel {part.channel + 1} is also used by {other.name}",
                                "a channel 1-16 that no other enabled part uses")
        return parts

    def part(self, name: str, raw: Any) -> PartConfig:
        path = f"parts.{name}"
        allowed = _DRUM_KEYS if name == "drums" else _PART_KEYS
        raw = self.table(raw, path, allowed)
        self.keys(raw, path, f"{path}.", allowed, [])
        value = {**_PART_DEFAULTS[name], **raw}
        program, bank = value["program"], value.get("bank")
        return PartConfig(
            name=name,
            channel=self.integer(value["channel"], f"{path}.channel", 1, 16) - 1,
            enabled=self.boolean(value["enabled"], f"{path}.enabled"),
            octave=self.integer(value.get("octave", 0), f"{path}.octave", -4, 4),
            velocity_scale=self.number(value["velocity_scale"], f"{path}.velocity_scale", 0.0, 2.0,
                                       "a factor from 0 to 2"),
            program=None if program is None else self.integer(program, f"{path}.program", 1, 128) - 1,
            articulation=self.number(value.get("articulation", 1.0), f"{path}.articulation", 0.1, 4.0,
                                     "a factor from 0.1 to 4 on the emotion's articulation"),
            bank=None if bank is None else self.integer(bank, f"{path}.bank", 0, 16383),
        )

    def check_registers(self, parts: tuple[PartConfig, ...], emotions: dict[str, EmotionStyle],
                        path: str | None = None) -> None:
        """Every pitched part must stay inside MIDI 0..127 for every emotion's pitch range."""
        lowest = min(style.pitch_range[0] for style in emotions.values())
        highest = max(style.pitch_range[1] for style in emotions.values())
        allowed = f"{-(lowest // 12)} to {(127 - highest) // 12} with these pitch ranges"
        for part in parts:
            if part.name == "drums" or not part.enabled:
                continue
            low, high = lowest + 12 * part.octave, highest + 12 * part.octave
            if low < 0 or high > 127:
                raise self.fail(path or f"parts.{part.name}.octave",
                                f"{part.octave} puts notes at {low}..{high}, outside MIDI 0..127", allowed)

    def progression(self, raw: Any, path: str) -> tuple[str, ...]:
        if not isinstance(raw, list) or not 1 <= len(raw) <= 16:
            raise self.fail(path, f"expected a list of 1 to 16 chords, got {_show(raw)}", ROMAN_HELP)
        for index, numeral in enumerate(raw):
            try:
                parse_roman(numeral if isinstance(numeral, str) else "")
            except ValueError:
                raise self.fail(f"{path}[{index}]", f"not a roman numeral chord: {_show(numeral)}",
                                ROMAN_HELP) from None
        return tuple(raw)

    def pitch_range(self, raw: Any, path: str) -> tuple[int, int]:
        low, high = self.pair(raw, path, 0, 127, "MIDI note")
        if high - low < 12:
            raise self.fail(path, f"{low}..{high} spans less than an octave",
                            "[low, high] MIDI notes at least 12 apart, so every scale note fits")
        return low, high

    def tonic(self, raw: Any, path: str) -> int:
        allowed = "a note name such as C, F#, Bb, or a pitch class 0-11"
        if isinstance(raw, str):
            try:
                return parse_note_name(raw)
            except ValueError:
                raise self.fail(path, f"got {_show(raw)}", allowed) from None
        return self.integer(raw, path, 0, 11, allowed)

    # --- primitive checks ---

    def table(self, raw: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise self.fail(path, f"expected a mapping, got {_show(raw)}", f"keys {', '.join(allowed)}")
        return raw

    def keys(self, raw: dict[str, Any], path: str, prefix: str, allowed: Sequence[str],
             required: Sequence[str]) -> None:
        for key in raw:
            if key not in allowed:
                raise self.fail(f"{prefix}{key}", "unknown key", ", ".join(allowed))
        for key in required:
            if key not in raw:
                raise self.fail(f"{prefix}{key}", "missing", f"{path} must set {', '.join(required)}")

    def number(self, raw: Any, path: str, low: float, high: float, allowed: str) -> float:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            raise self.fail(path, f"expected a number, got {_show(raw)}", allowed)
        if not low <= raw <= high:
            raise self.fail(path, f"{raw} is out of range", allowed)
        return float(raw)

    def integer(self, raw: Any, path: str, low: int, high: int, allowed: str | None = None) -> int:
        allowed = allowed or f"a whole number from {low} to {high}"
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise self.fail(path, f"expected a whole number, got {_show(raw)}", allowed)
        if not low <= raw <= high:
            raise self.fail(path, f"{raw} is out of range", allowed)
        return raw

    def boolean(self, raw: Any, path: str) -> bool:
        if not isinstance(raw, bool):
            raise self.fail(path, f"expected true or false, got {_show(raw)}", "true or false")
        return raw

    def choice(self, raw: Any, path: str, options: tuple[str, ...]) -> str:
        if raw not in options:
            raise self.fail(path, f"got {_show(raw)}", ", ".join(options))
        return raw

    def pair(self, raw: Any, path: str, low: float, high: float, unit: str, integer: bool = True,
             ordered: bool = True) -> tuple[Any, Any]:
        kind = "whole numbers" if integer else "numbers"
        allowed = f"[low, high] {unit} {kind} from {low} to {high}" + (", low <= high" if ordered else "")
        if not isinstance(raw, list) or len(raw) != 2:
            raise self.fail(path, f"expected a list of two {kind}, got {_show(raw)}", allowed)
        for index, item in enumerate(raw):
            wrong_type = isinstance(item, bool) or not isinstance(item, int if integer else (int, float))
            if wrong_type or not low <= item <= high:
                raise self.fail(f"{path}[{index}]", f"got {_show(item)}", allowed)
        if ordered and raw[0] > raw[1]:
            raise self.fail(path, f"low {raw[0]} is above high {raw[1]}", allowed)
        return raw[0], raw[1]
