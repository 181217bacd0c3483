"""The YAML mapping language: what each emotion sounds like and which parts play it.

A mapping file is read into frozen dataclasses and checked completely before anything plays:
a bad file raises :class:`MappingError` with one line that names the file, the key path and
what is allowed there. A user's file is merged over the packaged default (``extends:
default``, the default), so it only needs the keys it changes; ``extends: none`` makes a file
stand alone, and then every emotion must be given. The keys themselves are documented in
``mappings/default.yaml``.
"""

from __future__ import annotations

import copy
import importlib.resources
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .labels import EMOTIONS
from .music.theory import MODES, ROMAN_HELP, parse_note_name, parse_roman

PART_NAMES: tuple[str, ...] = ("melody", "chords", "bass", "drums")
RHYTHMS: tuple[str, ...] = ("regular", "irregular")
DEFAULT_SOURCE = "default"

_TOP_KEYS = ("extends", "key", "beats_per_bar", "emotions", "parts")
_EMOTION_KEYS = ("tempo", "mode", "progression", "pitch_range", "velocity", "density", "rhythm",
                 "articulation", "leap")
_EMOTION_REQUIRED = _EMOTION_KEYS[:7]
_PART_KEYS = ("channel", "enabled", "octave", "velocity_scale", "program")
_DRUM_KEYS = ("channel", "enabled", "velocity_scale", "program")  # drum notes are fixed GM sounds: no octave

# What a part is when a stand-alone file (extends: none) leaves it out; channels as musicians count.
_PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "melody": {"channel": 1, "enabled": True, "octave": 0, "velocity_scale": 1.0, "program": None},
    "chords": {"channel": 2, "enabled": True, "octave": -1, "velocity_scale": 0.75, "program": None},
    "bass": {"channel": 3, "enabled": True, "octave": -2, "velocity_scale": 0.9, "program": None},
    "drums": {"channel": 10, "enabled": False, "velocity_scale": 0.85, "program": None},
}
_EMOTION_DEFAULTS = {"articulation": 0.8, "leap": 0.15}


class MappingError(ValueError):
    """A mapping file that cannot be played, as one line: ``<file>: <key.path>: <problem>; allowed: <...>``."""

    def __init__(self, source: str, path: str, problem: str, allowed: str):
        self.source, self.path, self.problem, self.allowed = source, path, problem, allowed
        super().__init__(f"{source}: {path}: {problem}; allowed: {allowed}")


@dataclass(frozen=True)
class EmotionStyle:
    """How one emotion sounds."""

    tempo: tuple[float, float]      # BPM low..high; the arousal picks the point inside
    mode: str                       # a key of theory.MODES
    progression: tuple[str, ...]    # roman numerals, one chord per bar; its length is the phrase length
    pitch_range: tuple[int, int]    # melody MIDI notes low..high; the other parts sit octaves below
    velocity: tuple[int, int]       # MIDI velocity low..high; accents reach the top, the spread is the swing
    density: float                  # melody notes per bar
    rhythm: str                     # "regular" (metric grid) or "irregular" (displaced onsets)
    articulation: float             # sounding length over the gap to the next note: 1 legato, ~0.4 staccato
    leap: float                     # chance that a melody move is a leap (a fourth or more) instead of a step


@dataclass(frozen=True)
class PartConfig:
    """One instrument part on its own MIDI channel."""

    name: str                 # melody, chords, bass or drums: picks the note generator
    channel: int              # 0-15 (the YAML counts 1-16)
    enabled: bool
    octave: int               # octaves below/above the emotion's pitch_range this part plays (drums: 0)
    velocity_scale: float     # multiplies the emotion's velocities, so parts sit in a balance
    program: int | None       # GM program 0-127 sent before the first note (the YAML counts 1-128); None: leave it


@dataclass(frozen=True)
class Mapping:
    tonic: int                          # pitch class 0-11 of the key
    beats_per_bar: int
    emotions: dict[str, EmotionStyle]   # all seven, keyed by the names in labels.EMOTIONS
    parts: tuple[PartConfig, ...]       # in PART_NAMES order
    source: str                         # the file it came from, or "default"

    def channels(self) -> tuple[int, ...]:
        """Channels (0-15) of the enabled parts."""
        return tuple(part.channel for part in self.enabled_parts())

    def enabled_parts(self) -> tuple[PartConfig, ...]:
        return tuple(part for part in self.parts if part.enabled)

    def part(self, name: str) -> PartConfig:
        return next(part for part in self.parts if part.name == name)


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and check a mapping file; ``None`` gives the packaged default."""
    if path is None:
        return parse_mapping(default_mapping_text(), DEFAULT_SOURCE)
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(source, "(file)", f"cannot be read ({error})", "a readable UTF-8 YAML file") from None
    return parse_mapping(text, source)


def parse_mapping(text: str, source: str) -> Mapping:
    """Check mapping *text* (read from *source*, named in errors) and build the :class:`Mapping`."""
    raw = _read_yaml(text, source)
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
        return Mapping(self.tonic(raw.get("key", "C")), beats, emotions, parts, self.source)

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
        program = value["program"]
        return PartConfig(
            name=name,
            channel=self.integer(value["channel"], f"{path}.channel", 1, 16) - 1,
            enabled=self.boolean(value["enabled"], f"{path}.enabled"),
            octave=self.integer(value.get("octave", 0), f"{path}.octave", -4, 4),
            velocity_scale=self.number(value["velocity_scale"], f"{path}.velocity_scale", 0.0, 2.0,
                                       "a factor from 0 to 2"),
            program=None if program is None else self.integer(program, f"{path}.program", 1, 128) - 1,
        )

    def check_registers(self, parts: tuple[PartConfig, ...], emotions: dict[str, EmotionStyle]) -> None:
        """Every pitched part must stay inside MIDI 0..127 for every emotion's pitch range."""
        lowest = min(style.pitch_range[0] for style in emotions.values())
        highest = max(style.pitch_range[1] for style in emotions.values())
        allowed = f"{-(lowest // 12)} to {(127 - highest) // 12} with these pitch ranges"
        for part in parts:
            if part.name == "drums" or not part.enabled:
                continue
            low, high = lowest + 12 * part.octave, highest + 12 * part.octave
            if low < 0 or high > 127:
                raise self.fail(f"parts.{part.name}.octave",
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

    def tonic(self, raw: Any) -> int:
        allowed = "a note name such as C, F#, Bb, or a pitch class 0-11"
        if isinstance(raw, str):
            try:
                return parse_note_name(raw)
            except ValueError:
                raise self.fail("key", f"got {_show(raw)}", allowed) from None
        return self.integer(raw, "key", 0, 11, allowed)

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

    def pair(self, raw: Any, path: str, low: float, high: float, unit: str, integer: bool = True) -> tuple[Any, Any]:
        kind = "whole numbers" if integer else "numbers"
        allowed = f"[low, high] {unit} {kind} from {low} to {high}, low <= high"
        if not isinstance(raw, list) or len(raw) != 2:
            raise self.fail(path, f"expected a list of two {kind}, got {_show(raw)}", allowed)
        for index, item in enumerate(raw):
            wrong_type = isinstance(item, bool) or not isinstance(item, int if integer else (int, float))
            if wrong_type or not low <= item <= high:
                raise self.fail(f"{path}[{index}]", f"got {_show(item)}", allowed)
        if raw[0] > raw[1]:
            raise self.fail(path, f"low {raw[0]} is above high {raw[1]}", allowed)
        return raw[0], raw[1]
