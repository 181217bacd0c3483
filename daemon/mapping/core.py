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
import hashlib
import re
import reprlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..labels import EMOTIONS
from ..theory import MODES, ROMAN_HELP, parse_note_name, parse_roman
from ..outputs.osc_targets import OscTargetSpec, targets_from_yaml
from ..labels import NO_FACE_POLICIES
from ..perception.smoothing import SmoothingConfig
from ..labels import FOLLOW_MODES
from ..errors import MappingError

PART_NAMES: tuple[str, ...] = ("melody", "chords", "bass", "drums")
RHYTHMS: tuple[str, ...] = ("regular", "irregular")
DEFAULT_SOURCE = "default"

_TOP_KEYS = ("extends", "key", "beats_per_bar", "transition", "humanize", "emotions", "parts", "cc", "smoothing", "osc",
             "faces")
_EMOTION_KEYS = ("tempo", "mode", "progression", "pitch_range", "velocity", "density", "rhythm",
                 "articulation", "leap", "key")
CHANGE_AT: tuple[str, ...] = ("bar", "phrase")
BLENDS: tuple[str, ...] = ("probabilities", "argmax")
CURVES: tuple[str, ...] = ("linear", "exponential", "step")
_TRANSITION_KEYS = ("tempo_glide_beats", "change_at", "blend")
_HUMANIZE_KEYS = ("timing_ms", "velocity")
_SMOOTHING_KEYS = ("attack", "release", "hysteresis", "confirm", "min_hold", "no_face_fade", "no_face")
_FACES_KEYS = ("follow", "max", "channels", "octave", "velocity_scale", "program")
_CC_KEYS = ("source", "cc", "channel", "range", "out", "curve", "steps", "rate")
_CC_REQUIRED = ("source", "cc", "channel")
# Where each control source lives and its natural range (the default of a cc entry's "range").
CC_SOURCES: dict[str, tuple[float, float]] = {
    "valence": (-1.0, 1.0), "arousal": (-1.0, 1.0), "confidence": (0.0, 1.0),
    **{name: (0.0, 1.0) for name in EMOTIONS},
    "tempo": (40.0, 200.0), "density": (0.0, 1.0),
}
PRESET_NAME = re.compile(r"[A-Za-z0-9_-]+")
_NOTE_SPELLING = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_EMOTION_REQUIRED = _EMOTION_KEYS[:7]
_PART_KEYS = ("channel", "enabled", "octave", "velocity_scale", "articulation", "program", "bank")
_DRUM_KEYS = ("channel", "enabled", "velocity_scale", "program", "bank")  # drum notes are fixed GM sounds: no octave

# What a part is when a stand-alone file (extends: none) leaves it out; channels as musicians count.
_PART_DEFAULTS: dict[str, dict[str, Any]] = {
    "melody": {"channel": 1, "enabled": True, "octave": 0, "velocity_scale": 1.0, "articulation": 1.0, "program": None},
    "chords": {"channel": 2, "enabled": True, "octave": -1, "velocity_scale": 0.75, "articulation": 1.0, "program": None},
    "bass": {"channel": 3, "enabled": True, "octave": -2, "velocity_scale": 0.9, "articulation": 1.0, "program": None},
    "drums": {"channel": 10, "enabled": False, "velocity_scale": 0.85, "program": None},
}
_EMOTION_DEFAULTS = {"articulation": 0.8, "leap": 0.15}


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
    tonic: int | None = None        # this emotion's own key (pitch class 0-11); None: the mapping's key


@dataclass(frozen=True)
class Transition:
    """How the music moves from one emotion to the next."""

    tempo_glide_beats: int = 4      # beats a tempo change takes (0: jump at the bar line)
    change_at: str = "bar"          # "bar" or "phrase": when mode, key and progression may switch
    blend: str = "probabilities"    # "probabilities" (weighted mean of the emotions) or "argmax" (the leader only)


@dataclass(frozen=True)
class Humanize:
    """Small random deviations from the grid; zero for both gives the exact grid."""

    timing_ms: float = 0.0          # standard deviation of onset shifts, milliseconds (0-50)
    velocity: float = 0.0           # standard deviation of velocity changes (0-30)

    @property
    def enabled(self) -> bool:
        return self.timing_ms > 0 or self.velocity > 0


@dataclass(frozen=True)
class ControlSpec:
    """One ``cc:`` entry: a continuous source sent as a MIDI control change."""

    source: str                     # a key of CC_SOURCES
    cc: int                         # controller number 0-127
    channel: int                    # 0-15 (the YAML counts 1-16)
    range: tuple[float, float]      # source values mapped to the ends of *out* (clamped outside)
    out: tuple[int, int]            # CC values at range low and range high (high < low inverts)
    curve: str                      # linear, exponential or step
    steps: int                      # levels of a step curve (2-128)
    rate: float                     # at most this many messages per second (Hz)


@dataclass(frozen=True)
class PartConfig:
    """One instrument part on its own MIDI channel."""

    name: str                 # melody, chords, bass or drums: picks the note generator
    channel: int              # 0-15 (the YAML counts 1-16)
    enabled: bool
    octave: int               # octaves below/above the emotion's pitch_range this part plays (drums: 0)
    velocity_scale: float     # multiplies the emotion's velocities, so parts sit in a balance
    program: int | None       # GM program 0-127 sent before the first note (the YAML counts 1-128); None: leave it
    articulation: float = 1.0  # multiplies the emotion's articulation (never past the next onset); drums: 1
    bank: int | None = None    # bank 0-16383 selected (CC 0 + CC 32) before the program; None: leave it


@dataclass(frozen=True)
class FacesConfig:
    """Which faces the music follows (``faces:``), and with ``each`` the voice each face plays."""

    follow: str = "largest"             # largest (the performer), average (an audience) or each (a voice per face)
    max_faces: int = 4                  # faces followed at most (average, each)
    channels: tuple[int, ...] = (4, 5, 6, 7)  # each: the channel (0-15) of the 1st, 2nd... face's voice
    octave: int = 0                     # each: voices' register against the emotion's pitch_range
    velocity_scale: float = 0.8         # each: voices' level against the emotion's velocities
    program: int | None = None          # each: GM program 0-127 for every voice channel; None: leave it

    def voice_parts(self) -> tuple[PartConfig, ...]:
        """One melody part per voice slot (empty unless ``each``)."""
        if self.follow != "each":
            return ()
        return tuple(PartConfig(name="melody", channel=channel, enabled=True, octave=self.octave,
                                velocity_scale=self.velocity_scale, program=self.program)
                     for channel in self.channels[:self.max_faces])


@dataclass(frozen=True)
class Mapping:
    tonic: int                          # pitch class 0-11 of the key
    beats_per_bar: int
    emotions: dict[str, EmotionStyle]   # all seven, keyed by the names in labels.EMOTIONS
    parts: tuple[PartConfig, ...]       # in PART_NAMES order
    source: str                         # the file it came from, or "default"
    transition: Transition = Transition()
    humanize: Humanize = Humanize()
    controls: tuple[ControlSpec, ...] = ()  # the cc: entries, in file order
    smoothing: SmoothingConfig = SmoothingConfig()  # how the face's emotion is steadied before the music
    osc: tuple[OscTargetSpec, ...] = ()  # OSC targets with their presets, besides any --osc
    faces: FacesConfig = FacesConfig()  # which faces count, and their voices

    def tonic_of(self, emotion: str) -> int:
        """The key an emotion plays in: its own ``key`` if it has one, else the mapping's."""
        own = self.emotions[emotion].tonic
        return self.tonic if own is None else own

    def channels(self) -> tuple[int, ...]:
        """Channels (0-15) of the enabled parts, and of the face voices with ``faces: each``."""
        return tuple(part.channel for part in self.enabled_parts() + self.faces.voice_parts())

    def enabled_parts(self) -> tuple[PartConfig, ...]:
        return tuple(part for part in self.parts if part.enabled)

    def part(self, name: str) -> PartConfig:
        return next(part for part in self.parts if part.name == name)


MAX_FILE_BYTES = 1_000_000


def load_mapping(path: str | Path | None = None) -> Mapping:
    """Read and check a mapping file or preset; ``None`` (or ``"default"``) gives the packaged default.

    *path* is a file when that file exists; otherwise a bare name names a preset (see the module docstring).
    """
    if path is None or (str(path) == DEFAULT_SOURCE and not Path(path).exists()):
        return parse_mapping(default_mapping_text(), DEFAULT_SOURCE)
    resolved, source = mapping_path(path), str(path)
    try:
        size = resolved.stat().st_size
        if size > MAX_FILE_BYTES:  # a mapping is a few kB; parsing megabytes of YAML would stall a reload
            raise MappingError(source, "(file)", f"is {size / 1e6:.1f} MB", f"a mapping file under {MAX_FILE_BYTES // 1000} kB")
        text = resolved.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(source, "(file)", f"cannot be read ({error})", "a readable UTF-8 YAML file") from None
    return parse_mapping(text, source)


def presets_dir() -> Path:
    """The folder of the packaged presets (``mappings/``)."""
    return Path(str(importlib.resources.files("emobridge.mappings")))


def list_presets() -> dict[str, Path]:
    """Preset name -> file, for every ``*.yaml`` shipped in ``mappings/``, sorted by name."""
    return {path.stem: path for path in sorted(presets_dir().glob("*.yaml"))}


def preset_is_faithful(name: str) -> bool:
    """Whether a preset claims to carry the emotions faithfully: a ``# emotion-faithful: yes`` line in it."""
    text = list_presets()[name].read_text(encoding="utf-8")
    return re.search(r"^#\s*emotion-faithful:\s*yes\b", text, re.MULTILINE | re.IGNORECASE) is not None


def mapping_path(spec: str | Path | None) -> Path:
    """The file a mapping spec reads: the file itself if it exists, else the preset of that name.

    ``None`` is the packaged default. Watch this path for hot reload.
    """
    if spec is None:
        return list_presets()[DEFAULT_SOURCE]
    path = Path(spec)
    name = str(spec)
    if path.exists() or not PRESET_NAME.fullmatch(name):
        return path  # a path that does not exist fails when it is read, naming the file
    presets = list_presets()
    if name in presets:
        return presets[name]
    raise MappingError(name, "(file)", "no such file, and no preset of that name",
                       f"a YAML file path or a preset name: {', '.join(presets)}")


class MappingWatcher:
    """What hot reload needs: re-read a mapping spec when its file's content changes.

    ``poll()`` returns the new :class:`Mapping` when the file changed since the last good load
    (or since construction), ``None`` when it did not; a changed but bad file raises
    :class:`MappingError` once per distinct content (the caller keeps playing the old mapping),
    then ``poll()`` returns ``None`` until the content changes again.
    """

    def __init__(self, spec: str | Path | None):
        self.spec = spec
        self.path = mapping_path(spec)
        self._digest = self._read_digest()

    def _read_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def poll(self) -> Mapping | None:
        digest = self._read_digest()
        if digest is None or digest == self._digest:
            return None
        self._digest = digest  # a bad file is reported once, not on every poll
        return load_mapping(self.spec)


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


def _number(value: float) -> int | float:
    """Whole floats as ints, so the description reads like the file a person would write."""
    return int(value) if float(value).is_integer() else round(float(value), 4)


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
