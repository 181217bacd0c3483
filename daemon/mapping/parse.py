"""Checking YAML into the model: one :class:`MappingError` line per bad file, naming the key and what is allowed.

A file is merged over the packaged default (``extends: default``, the default), so it only
needs the keys it changes; ``extends: none`` makes a file stand alone, and then every emotion
must be given. Which keys there are, their limits and the words of every error come from the
declaration in :mod:`.keys`; the checks across keys (channels, registers) are here.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import re
import reprlib
from pathlib import Path
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import yaml

from ..errors import MappingError
from ..theory import ROMAN_HELP, check_numeral, parse_note_name
from .describe import plain_number
from .keys import (TOP, Boolean, Choice, Entries, FilePath, Integer, Key, Kind, ListOf, Named, Note, Number, Numeral,
                   OscTargets, Pair, Section, Table)
from .model import DEFAULT_SOURCE, EmotionStyle, FacesConfig, LaunchItem, Mapping, PartConfig
from .osc_targets import targets_from_yaml

EXTENDS = TOP.key("extends")
NOTE_ALLOWED = "a note name such as C, F#, Bb, or a pitch class 0-11"

# What a mapping file may hold, counted while the YAML is composed, before anything is built from it.
# The language nests 4 deep (emotions.happy.tempo[0], osc[0].messages[0]) and the packaged default,
# every emotion and part spelt out, is about 330 values; 128 full cc entries and 16 osc targets come to
# about 3,500. Past these a file is a mistake or an attack (a billion laughs), not a mapping.
MAX_DEPTH = 16          # lists and maps inside one another
MAX_VALUES = 10_000     # keys, items and scalars, each alias counted as all it repeats

# The longest each part of an error may be: the file's name, the key path and the problem quote the
# file (a key or value of a megabyte would otherwise be a log line of a megabyte); allowed is our own
# words, whose longest (a progression's) is about 230 characters.
ERROR_PART_CHARS = {"source": 160, "path": 120, "problem": 200, "allowed": 300}
MAX_ERROR_CHARS = sum(ERROR_PART_CHARS.values()) + len(": : ; allowed: ")


def parse_mapping(text: str, source: str) -> Mapping:
    """Check mapping *text* (read from *source*, named in errors) and build the :class:`Mapping`.

    Every error is a :class:`MappingError` of one line of at most :data:`MAX_ERROR_CHARS` characters.
    """
    try:
        return _parse(text, source)
    except MappingError as error:
        raise short_error(error) from None


def short_error(error: MappingError) -> MappingError:
    """*error* on one line, each part cut to its :data:`ERROR_PART_CHARS` (the same error when it fits)."""
    parts = {name: _one_line(getattr(error, name), most) for name, most in ERROR_PART_CHARS.items()}
    if all(parts[name] == getattr(error, name) for name in parts):
        return error
    return MappingError(**parts)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _one_line(text: object, most: int) -> str:
    """*text* with control characters (newlines too) escaped, cut to *most* characters, saying how many more."""
    text = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), str(text))
    if len(text) <= most:
        return text
    tail = f"... ({len(text):,} characters in all)"
    return text[:max(0, most - len(tail))] + tail


def _parse(text: str, source: str) -> Mapping:
    raw = _read_yaml(text, source)
    if isinstance(raw.get("faces"), str):  # the short form, faces: each
        raw["faces"] = {"follow": raw["faces"]}
    builder = _Builder(source)
    if builder.key(EXTENDS, raw.pop(EXTENDS.name, "default"), EXTENDS.name) == "default":
        raw = _merge(_default_raw(), raw, source, "")
    return builder.mapping(raw)


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


class _TooLarge(yaml.YAMLError):
    """A document past :data:`MAX_DEPTH` or :data:`MAX_VALUES`, found while it is composed."""

    def __init__(self, problem: str, allowed: str, mark: Any):
        super().__init__(problem)
        self.problem, self.allowed, self.mark = problem, allowed, mark


class _BoundedLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader that counts as it composes: a document nested past :data:`MAX_DEPTH`
    or of more than :data:`MAX_VALUES` values is refused at the value that goes past, before any of it
    is built. An alias counts as the values it repeats (its anchor's weight), so nested anchors that
    would expand to millions (a billion laughs) are refused at the first alias too many, and an alias
    inside the value it names (a structure containing itself) is refused outright.

    Nesting is counted here, not by Python's recursion limit, so a deep document never reaches the
    composer's recursion: it is a one-line error, not a ``RecursionError``.
    """

    def __init__(self, stream: str):
        super().__init__(stream)
        self.depth = 0    # lists and maps open around the value being composed
        self.values = 0   # values composed so far, each alias as its anchor's weight

    def count(self, weight: int, mark: Any) -> None:
        self.values += weight
        if self.values > MAX_VALUES:
            raise _TooLarge(f"more than {MAX_VALUES:,} values (keys, items, each alias as all it repeats)",
                            f"a mapping file of at most {MAX_VALUES:,} values (the default has about 330)", mark)

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            anchor = self.anchors.get(event.anchor)
            if anchor is not None:  # an undefined one is the composer's own error
                weight = getattr(anchor, "weight", None)
                if weight is None:
                    raise _TooLarge(f"alias *{event.anchor} is inside the value it names",
                                    "aliases to a value that ends before them", event.start_mark)
                self.count(weight, event.start_mark)
            return super().compose_node(parent, index)
        self.count(1, event.start_mark)
        nests = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if nests:
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _TooLarge(f"lists and maps nested more than {MAX_DEPTH} deep",
                                f"at most {MAX_DEPTH} levels (the mapping language nests 4)", event.start_mark)
        try:
            node = super().compose_node(parent, index)
        finally:
            if nests:
                self.depth -= 1
        if isinstance(node, yaml.SequenceNode):
            node.weight = 1 + sum(item.weight for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            node.weight = 1 + sum(key.weight + value.weight for key, value in node.value)
        else:
            node.weight = 1
        return node


def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        raw = yaml.load(text, Loader=_BoundedLoader)  # a SafeLoader, with limits
    except _TooLarge as error:
        raise MappingError(source, _where(error.mark), error.problem, error.allowed) from None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise MappingError(source, _where(getattr(error, "problem_mark", None)), f"invalid YAML ({problem})",
                           "YAML syntax: 'key: value' lines, lists as [a, b]") from None
    except (ValueError, OverflowError) as error:  # a value YAML's types cannot hold: 5,000 digits, a 13th month
        raise MappingError(source, "(file)", f"a value YAML cannot read ({error})",
                           "numbers, dates and text that Python can hold") from None
    except RecursionError:  # not reached with MAX_DEPTH far below the recursion limit; kept as a backstop
        raise MappingError(source, "(file)", "nested too deep to read", f"at most {MAX_DEPTH} levels") from None
    if raw is None:
        raise MappingError(source, "(top level)", "the file is empty", f"a mapping with keys {', '.join(TOP.names)}")
    if not isinstance(raw, dict):
        raise MappingError(source, "(top level)", f"expected a mapping, got {_show(raw)}",
                           f"a mapping with keys {', '.join(TOP.names)}")
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


def _allowed(key: Key, beats: int) -> str:
    """What *key* takes, for an error message: its kind's values, and the key's help."""
    text = _allowed_values(key.kind, beats) + (", or null" if key.nullable else "")
    return f"{text} ({key.help})"


def _allowed_values(kind: Kind, beats: int) -> str:
    """The values of *kind* in words; *beats* (per bar) scales a per-beat limit."""
    match kind:
        case Number(unit=unit):
            low, high = kind.limits(beats)
            return f"{unit} from {plain_number(low)} to {plain_number(high)}"
        case Integer(low=low, high=high):
            return f"a whole number from {low} to {high}"
        case Choice(options=options):
            return ", ".join(options)
        case Boolean():
            return "true or false"
        case Pair():
            numbers = "whole numbers" if kind.whole else "numbers"
            text = f"[low, high] {kind.unit} {numbers} from {plain_number(kind.low)} to {plain_number(kind.high)}"
            if kind.ordered:
                text += ", low <= high"
            if kind.min_span:
                text += f", at least {plain_number(kind.min_span)} apart"
            if kind.distinct:
                text += ", low != high"
            return text
        case Note():
            return NOTE_ALLOWED
        case Numeral():
            return ROMAN_HELP
        case FilePath(what=what, longest=longest):
            return f"{what}: a path of 1 to {longest} characters"
        case ListOf(item=item, most=most, what=what, fewest=fewest):
            return f"a list of {fewest} to {most} {what}, each {_allowed_values(item, beats)}"
    raise TypeError(f"no words for {kind!r}")  # a table's errors list its keys instead


class _Builder:
    """Checks raw YAML data against the declaration (:mod:`.keys`) and builds the model from it."""

    def __init__(self, source: str):
        self.source = source
        self.beats = TOP.model_default(TOP.key("beats_per_bar"))

    def fail(self, path: str, problem: str, allowed: str) -> MappingError:
        return MappingError(self.source, path, problem, allowed)

    def mapping(self, raw: dict[str, Any]) -> Mapping:
        beats = TOP.key("beats_per_bar")
        if beats.name in raw:  # density's limit counts per beat, so the bar is known before the emotions
            self.beats = self.key(beats, raw[beats.name], beats.name)
        mapping = self.section(TOP, raw, "", source=self.source)
        self.check_parts(mapping.parts)
        self.check_registers(mapping.parts, mapping.emotions)
        self.check_voice_channels(mapping.faces, mapping.parts)
        self.check_registers(mapping.faces.voice_parts(), mapping.emotions, "faces.octave")
        self.check_launch(mapping.daw.launch)
        return mapping

    # --- the declaration walked ---

    def section(self, section: Section, raw: Any, path: str, base: Any = None, **fixed: Any) -> Any:
        """Check a table of *section*'s keys found at *path* ('' at the top level) and build its model.

        A key the table leaves out keeps *base*'s value where there is a base, else takes its default;
        *fixed* are model fields that are not keys of the file.
        """
        where, prefix = path or "(top level)", f"{path}." if path else ""
        raw = self.table(raw, where, section.names)
        self.keys(raw, where, prefix, section.names, () if base is not None else section.required)
        values: dict[str, Any] = {}
        for key in section.keys:
            if not key.stored:
                continue  # extends: read by parse_mapping before the merge
            if key.name in raw:
                values[key.field] = self.key(key, raw[key.name], prefix + key.name)
            elif base is None and key.default is not None:
                values[key.field] = key.default(values)
        return dataclasses.replace(base, **values) if base is not None else section.model(**values, **fixed)

    def key(self, key: Key, raw: Any, path: str) -> Any:
        """*raw* checked as the value of *key*, as the model holds it."""
        match key.kind:
            case Table(section=section):
                return self.section(section, raw, path)
            case Named():
                return self.named(raw, path, key.kind)
            case Entries():
                return self.entries(raw, path, key.kind)
            case OscTargets(most=most):
                if isinstance(raw, list) and len(raw) > most:  # before any entry is looked up
                    raise self.fail(path, f"{len(raw):,} targets, more than {most}", f"a list of at most {most} targets")
                return tuple(targets_from_yaml(raw, self.source, path))
        if raw is None and key.nullable:
            return None
        return self.value(key.kind, raw, path, _allowed(key, self.beats))

    def value(self, kind: Kind, raw: Any, path: str, allowed: str) -> Any:
        """*raw* checked as one value of *kind*; *allowed* is what an error says is allowed."""
        match kind:
            case Number():
                return self.number(raw, path, *kind.limits(self.beats), allowed)
            case Integer(low=low, high=high, offset=offset):
                return self.integer(raw, path, low, high, allowed) - offset
            case Choice(options=options):
                return self.choice(raw, path, options, allowed)
            case Boolean():
                return self.boolean(raw, path, allowed)
            case Pair():
                return self.pair(raw, path, kind, allowed)
            case Note():
                return self.tonic(raw, path, allowed)
            case Numeral():
                return self.numeral(raw, path, allowed)
            case FilePath(longest=longest):
                return self.file_path(raw, path, longest, allowed)
            case ListOf():
                return self.items(raw, path, kind, allowed)
        raise TypeError(f"no check for {kind!r}")

    def file_path(self, raw: Any, path: str, longest: int, allowed: str) -> str:
        """A path as text, resolved against the mapping file's folder when relative."""
        if not isinstance(raw, str) or not raw.strip() or len(raw) > longest or "\0" in raw:
            raise self.fail(path, f"expected a file path, got {_show(raw)}", allowed)
        name = Path(raw).expanduser()
        if not name.is_absolute() and Path(self.source).is_file():
            name = Path(self.source).resolve().parent / name
        return str(name)

    def named(self, raw: Any, path: str, kind: Named) -> Any:
        names = tuple(kind.sections)
        raw = self.table(raw, path, names)
        self.keys(raw, path, f"{path}.", names, names if kind.required else ())
        built = {name: self.section(section, raw.get(name, {}), f"{path}.{name}",
                                    base=kind.bases[name] if kind.bases else None)
                 for name, section in kind.sections.items()}
        return built if kind.keyed else tuple(built.values())

    def entries(self, raw: Any, path: str, kind: Entries) -> tuple[Any, ...]:
        section = kind.section
        allowed = f"a list of at most {kind.most} entries {{{', '.join(section.names)}}}"
        if raw is None:
            return ()
        if not isinstance(raw, list):
            raise self.fail(path, f"expected a list, got {_show(raw)}", allowed)
        if len(raw) > kind.most:
            raise self.fail(path, f"{len(raw):,} entries, more than {kind.most}", allowed)
        return tuple(self.section(section, entry, f"{path}[{index}]") for index, entry in enumerate(raw))

    # --- checks across keys ---

    def check_parts(self, parts: tuple[PartConfig, ...]) -> None:
        """At least one part plays, and no two enabled parts share a channel."""
        enabled = [part for part in parts if part.enabled]
        if not enabled:
            raise self.fail("parts", "no part is enabled", "at least one part with enabled: true")
        for index, part in enumerate(enabled):
            other = next((o for o in enabled[:index] if o.channel == part.channel), None)
            if other:
                raise self.fail(f"parts.{part.name}.channel",
                                f"channel {part.channel + 1} is also used by {other.name}",
                                "a channel 1-16 that no other enabled part uses")

    def check_launch(self, items: tuple[LaunchItem, ...]) -> None:
        """Each launch item stands for one point (an emotion, or valence and arousal) and fires something."""
        for index, item in enumerate(items):
            path = f"daw.launch[{index}]"
            point = (item.valence is not None, item.arousal is not None)
            if (item.emotion is not None) == any(point) or any(point) != all(point):
                raise self.fail(path, "needs an emotion or both valence and arousal (not both ways)",
                                "{emotion: happy, ...} or {valence: 0.5, arousal: -0.2, ...}")
            if (item.track is None) != (item.clip is None):
                raise self.fail(path, "a clip needs both track and clip", "track: N with clip: M")
            if item.scene is None and item.clip is None and item.region is None:
                raise self.fail(path, "fires nothing", "scene: N (Live), track: N with clip: M (Live), region: N (Reaper)")

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

    # --- checks of one value ---

    def table(self, raw: Any, path: str, allowed: Sequence[str]) -> dict[str, Any]:
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

    def integer(self, raw: Any, path: str, low: int, high: int, allowed: str) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise self.fail(path, f"expected a whole number, got {_show(raw)}", allowed)
        if not low <= raw <= high:
            raise self.fail(path, f"{raw} is out of range", allowed)
        return raw

    def boolean(self, raw: Any, path: str, allowed: str) -> bool:
        if not isinstance(raw, bool):
            raise self.fail(path, f"expected true or false, got {_show(raw)}", allowed)
        return raw

    def choice(self, raw: Any, path: str, options: tuple[str, ...], allowed: str) -> str:
        if raw not in options:
            raise self.fail(path, f"got {_show(raw)}", allowed)
        return raw

    def tonic(self, raw: Any, path: str, allowed: str) -> int:
        if isinstance(raw, str):
            try:
                return parse_note_name(raw)
            except ValueError:
                raise self.fail(path, f"got {_show(raw)}", allowed) from None
        return self.integer(raw, path, 0, 11, allowed)

    def numeral(self, raw: Any, path: str, allowed: str) -> str:
        try:
            check_numeral(raw if isinstance(raw, str) else "")
        except ValueError:
            raise self.fail(path, f"not a roman numeral chord: {_show(raw)}", allowed) from None
        return raw

    def items(self, raw: Any, path: str, kind: ListOf, allowed: str) -> tuple[Any, ...]:
        if not isinstance(raw, list) or not kind.fewest <= len(raw) <= kind.most:
            raise self.fail(path, f"expected a list of {kind.fewest} to {kind.most} {kind.what}, got {_show(raw)}",
                            allowed)
        return tuple(self.value(kind.item, item, f"{path}[{index}]", allowed) for index, item in enumerate(raw))

    def pair(self, raw: Any, path: str, kind: Pair, allowed: str) -> tuple[Any, Any]:
        numbers = "whole numbers" if kind.whole else "numbers"
        if not isinstance(raw, list) or len(raw) != 2:
            raise self.fail(path, f"expected a list of two {numbers}, got {_show(raw)}", allowed)
        for index, item in enumerate(raw):
            wrong_type = isinstance(item, bool) or not isinstance(item, int if kind.whole else (int, float))
            if wrong_type or not kind.low <= item <= kind.high:
                raise self.fail(f"{path}[{index}]", f"got {_show(item)}", allowed)
        low, high = raw
        if kind.ordered and low > high:
            raise self.fail(path, f"low {low} is above high {high}", allowed)
        if abs(high - low) < kind.min_span:
            raise self.fail(path, f"{low}..{high} spans less than {plain_number(kind.min_span)}", allowed)
        if kind.distinct and low == high:
            raise self.fail(path, f"low and high are both {low}", allowed)
        return (low, high) if kind.whole else (float(low), float(high))
