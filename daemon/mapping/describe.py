"""The resolved mapping as commented YAML (``emobridge check-mapping``), written by walking :mod:`.keys`."""

from __future__ import annotations

from typing import Any

import yaml

from .keys import TOP, Entries, Integer, Key, ListOf, Named, Note, Number, OscTargets, Pair, Section, Table
from .model import Mapping

NOTE_SPELLING = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # a pitch class as a key name


def describe_mapping(mapping: Mapping) -> str:
    """The resolved mapping as commented YAML: every key with the value in force, defaults filled in.

    The text is itself a stand-alone mapping file (``extends: none``) that loads to an equal mapping.
    """
    data = {"extends": "none", **_section(TOP, mapping)}
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100)
    channels = ", ".join(str(c + 1) for c in mapping.channels())
    return (f"# resolved mapping from {mapping.source}: every key, defaults filled in\n"
            f"# enabled parts play on channels {channels}\n{body}")


def plain_number(value: float) -> int | float:
    """Whole floats as ints, so the description reads like the file a person would write."""
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _section(section: Section, model: Any) -> dict[str, Any]:
    return {key.name: _key(key, getattr(model, key.field)) for key in section.keys if key.stored}


def _key(key: Key, value: Any) -> Any:
    return None if value is None and key.nullable else _value(key.kind, value)


def _value(kind: Any, value: Any) -> Any:
    """The YAML a file writes for a model *value* of *kind* (the inverse of parse's check)."""
    match kind:
        case Number():
            return plain_number(value)
        case Integer(offset=offset):
            return value + offset
        case Pair():
            return [plain_number(end) for end in value]
        case Note():
            return NOTE_SPELLING[value]
        case ListOf(item=item):
            return [_value(item, one) for one in value]
        case Table(section=section):
            return _section(section, value)
        case Named(sections=by_name, keyed=keyed):
            entries = value if keyed else {entry.name: entry for entry in value}
            return {name: _section(by_name[name], entries[name]) for name in by_name}
        case Entries(section=section):
            return [_section(section, entry) for entry in value]
        case OscTargets():
            return [spec.describe() for spec in value]
    return value  # choices and booleans read as they are written
