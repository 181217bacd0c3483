"""The YAML mapping language: the packaged default, merging, and one clear error per bad file."""

from __future__ import annotations

import math
import re

import pytest
import yaml

from emobridge.labels import EMOTIONS
from emobridge.errors import MappingError
from emobridge.mapping import PART_NAMES, default_mapping_text, describe_mapping, keys, load_mapping, parse_mapping
from emobridge.perception.smoothing import SmoothingConfig

FULL_HAPPY = ("{tempo: [110, 130], mode: major, progression: [I, IV, V, I], pitch_range: [60, 80], "
              "velocity: [70, 100], density: 8, rhythm: regular}")


def test_default_loads_with_all_emotions_and_parts():
    mapping = load_mapping()
    assert mapping.source == "default"
    assert mapping.tonic == 0 and mapping.beats_per_bar == 4
    assert set(mapping.emotions) == set(EMOTIONS)
    assert [part.name for part in mapping.parts] == ["melody", "chords", "bass", "drums", "counter"]
    assert mapping.channels() == (0, 1, 2)  # drums are off by default; channels count from 0 inside
    assert mapping.part("drums").channel == 9
    assert mapping.emotions["happy"].mode == "major" and mapping.emotions["sad"].mode == "minor"


def test_default_parts_are_what_a_stand_alone_file_gets_without_parts():
    """default.yaml says a part left out takes the values shown there: the code must agree."""
    raw = yaml.safe_load(default_mapping_text())
    del raw["parts"]
    assert parse_mapping(yaml.safe_dump(raw), "no-parts.yaml").parts == load_mapping().parts


def test_stand_alone_emotion_gets_documented_defaults_for_optional_keys():
    raw = yaml.safe_load(default_mapping_text())
    del raw["emotions"]["happy"]["articulation"], raw["emotions"]["happy"]["leap"]
    happy = parse_mapping(yaml.safe_dump(raw), "x.yaml").emotions["happy"]
    assert (happy.articulation, happy.leap) == (0.8, 0.15)


def test_partial_override_merges_over_the_default():
    default = load_mapping()
    mapping = parse_mapping("emotions:\n  happy:\n    tempo: [100, 120]\n", "mine.yaml")
    assert mapping.source == "mine.yaml"
    happy, default_happy = mapping.emotions["happy"], default.emotions["happy"]
    assert happy.tempo == (100.0, 120.0)
    assert (happy.mode, happy.progression, happy.velocity) == (default_happy.mode, default_happy.progression,
                                                               default_happy.velocity)
    assert {name: style for name, style in mapping.emotions.items() if name != "happy"} == \
        {name: style for name, style in default.emotions.items() if name != "happy"}
    assert mapping.parts == default.parts


def test_part_override_merges_key_by_key():
    mapping = parse_mapping("parts:\n  drums: {enabled: true}\n  melody: {channel: 5, program: 1}\n", "mine.yaml")
    assert mapping.part("drums").enabled and mapping.part("drums").channel == 9
    assert mapping.part("melody").channel == 4 and mapping.part("melody").program == 0
    assert mapping.channels() == (4, 1, 2, 9)


@pytest.mark.parametrize("key, tonic", [("C", 0), ("F#", 6), ("Bb", 10), ("a", 9), (7, 7)])
def test_key_by_name_or_pitch_class(key, tonic):
    assert parse_mapping(yaml.safe_dump({"key": key}), "k.yaml").tonic == tonic


def test_load_mapping_from_a_file(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text("emotions:\n  neutral: {tempo: [60, 70]}\n")
    mapping = load_mapping(path)
    assert mapping.source == str(path) and mapping.emotions["neutral"].tempo == (60.0, 70.0)


def test_missing_file_is_a_mapping_error(tmp_path):
    with pytest.raises(MappingError, match=r"nope\.yaml: \(file\): cannot be read"):
        load_mapping(tmp_path / "nope.yaml")


BAD_FILES = [
    # (what is wrong, file text, key path the error must name)
    ("yaml syntax", "emotions:\n  happy: {tempo: [1, 2}\n", "line 2, column 23"),
    ("yaml bad indent", "emotions:\n  happy:\n    tempo: [1, 2]\n   mode: x\n", "line 4, column 4"),
    ("control character", 'key: "\x07"\n', "(file)"),
    ("empty file", "", "(top level)"),
    ("comments only", "# nothing here\n", "(top level)"),
    ("not a mapping", "- happy\n- sad\n", "(top level)"),
    ("unknown top key", "tempo: 120\n", "tempo"),
    ("bad extends", "extends: other.yaml\n", "extends"),
    ("bad key name", "key: H\n", "key"),
    ("key out of range", "key: 12\n", "key"),
    ("beats not whole", "beats_per_bar: 4.5\n", "beats_per_bar"),
    ("emotions not a mapping", "emotions: [happy]\n", "emotions"),
    ("unknown emotion", "emotions: {bored: {tempo: [60, 70]}}\n", "emotions.bored"),
    ("unknown emotion key", "emotions: {happy: {tempoo: [60, 70]}}\n", "emotions.happy.tempoo"),
    ("tempo wrong type", "emotions: {happy: {tempo: fast}}\n", "emotions.happy.tempo"),
    ("tempo too slow", "emotions: {happy: {tempo: [10, 100]}}\n", "emotions.happy.tempo[0]"),
    ("tempo reversed", "emotions: {happy: {tempo: [140, 120]}}\n", "emotions.happy.tempo"),
    ("tempo boolean", "emotions: {happy: {tempo: [true, 120]}}\n", "emotions.happy.tempo[0]"),
    ("unknown mode", "emotions: {happy: {mode: bluesy}}\n", "emotions.happy.mode"),
    ("bad numeral", "emotions: {happy: {progression: [I, IV, X]}}\n", "emotions.happy.progression[2]"),
    ("mixed-case numeral", "emotions: {sad: {progression: [i, Iv]}}\n", "emotions.sad.progression[1]"),
    ("progression as text", "emotions: {happy: {progression: I IV V}}\n", "emotions.happy.progression"),
    ("empty progression", "emotions: {happy: {progression: []}}\n", "emotions.happy.progression"),
    ("pitch above MIDI", "emotions: {happy: {pitch_range: [60, 130]}}\n", "emotions.happy.pitch_range[1]"),
    ("pitch range too narrow", "emotions: {happy: {pitch_range: [60, 65]}}\n", "emotions.happy.pitch_range"),
    ("velocity zero", "emotions: {happy: {velocity: [0, 100]}}\n", "emotions.happy.velocity[0]"),
    ("density too high", "emotions: {happy: {density: 40}}\n", "emotions.happy.density"),
    ("density text", "emotions: {happy: {density: many}}\n", "emotions.happy.density"),
    ("unknown rhythm", "emotions: {happy: {rhythm: swing}}\n", "emotions.happy.rhythm"),
    ("articulation above 1", "emotions: {sad: {articulation: 1.5}}\n", "emotions.sad.articulation"),
    ("leap negative", "emotions: {sad: {leap: -0.1}}\n", "emotions.sad.leap"),
    ("density over the bar", "beats_per_bar: 2\n", "emotions.angry.density"),
    ("unknown part", "parts: {guitar: {channel: 4}}\n", "parts.guitar"),
    ("channel 17", "parts: {melody: {channel: 17}}\n", "parts.melody.channel"),
    ("channel 0", "parts: {melody: {channel: 0}}\n", "parts.melody.channel"),
    ("enabled not boolean", "parts: {melody: {enabled: 'yes please'}}\n", "parts.melody.enabled"),
    ("octave on drums", "parts: {drums: {octave: 1}}\n", "parts.drums.octave"),
    ("octave off the keyboard", "parts: {melody: {octave: 4}}\n", "parts.melody.octave"),
    ("program 0", "parts: {melody: {program: 0}}\n", "parts.melody.program"),
    ("shared channel", "parts: {bass: {channel: 1}}\n", "parts.bass.channel"),
    ("nothing enabled", "parts: {melody: {enabled: false}, chords: {enabled: false}, bass: {enabled: false}}\n",
     "parts"),
    ("part not a mapping", "parts: {melody: off}\n", "parts.melody"),
    ("alias bomb", "emotions:\n  happy:\n    progression: &a [[I, I, I, I], [I, I, I, I]]\n"
                   "  sad:\n    progression: [*a, *a, *a, *a]\n", "emotions.happy.progression[0]"),
    ("missing emotion", f"extends: none\nemotions:\n  happy: {FULL_HAPPY}\n", "emotions.angry"),
]


@pytest.mark.parametrize("text, path", [case[1:] for case in BAD_FILES], ids=[case[0] for case in BAD_FILES])
def test_bad_file_names_file_key_and_what_is_allowed(text, path):
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "bad.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"bad.yaml: {path}: "), message
    assert re.search(r"; allowed: \S", message), message
    assert caught.value.path == path


def test_missing_required_emotion_key_in_a_stand_alone_file():
    raw = yaml.safe_load(default_mapping_text())
    del raw["emotions"]["sad"]["mode"]
    with pytest.raises(MappingError, match=r"^x\.yaml: emotions\.sad\.mode: missing; allowed: .*mode"):
        parse_mapping(yaml.safe_dump(raw), "x.yaml")


def test_mapping_error_is_a_value_error_with_its_parts():
    with pytest.raises(ValueError) as caught:
        parse_mapping("emotions: {happy: {mode: bluesy}}", "bad.yaml")
    error = caught.value
    assert (error.source, error.path) == ("bad.yaml", "emotions.happy.mode")
    assert "harmonic_minor" in error.allowed and "'bluesy'" in error.problem


def test_osc_targets_in_the_mapping_file():
    from emobridge.mapping import parse_mapping

    mapping = parse_mapping("osc:\n  - {preset: abletonosc}\n  - '127.0.0.1:9000=emobridge:tempo,mode'\n", "live.yaml")
    assert [(t.host, t.port, t.preset) for t in mapping.osc] == [("127.0.0.1", 11000, "abletonosc"),
                                                                 ("127.0.0.1", 9000, "emobridge")]
    assert set(mapping.osc[1].selected) == {"tempo", "mode"}


def test_bad_osc_target_in_the_mapping_names_the_entry():
    from emobridge.mapping import parse_mapping

    with pytest.raises(MappingError) as error:
        parse_mapping("osc:\n  - {preset: cubase}\n", "live.yaml")
    assert "live.yaml" in str(error.value) and "osc[0]" in str(error.value)


def test_a_huge_file_is_refused_quickly(tmp_path):
    import time

    huge = tmp_path / "huge.yaml"
    huge.write_text("# padding\n" * 300_000 + "key: C\n")  # 3 MB of comments
    started = time.monotonic()
    with pytest.raises(MappingError) as error:
        load_mapping(huge)
    assert "huge.yaml" in str(error.value) and "MB" in str(error.value)
    assert time.monotonic() - started < 5


# --- the declaration's limits are the ones enforced ---

def _limit_base() -> dict:
    """A stand-alone file where only the limits of single keys can refuse a value: one low-density,
    mid-register style for every emotion (any octave and bar length fit) and the melody as the only part."""
    raw = yaml.safe_load(default_mapping_text())
    for style in raw["emotions"].values():
        style.update(pitch_range=[60, 72], density=1)
    raw["parts"] = {name: {"enabled": name == "melody"} for name in PART_NAMES}
    return raw


def _numeric(kind: keys.Kind) -> bool:
    """Whether the kind has numeric limits: a range, or a list's length."""
    return isinstance(kind, (keys.Number, keys.Integer, keys.Pair, keys.ListOf))


def _past(kind: keys.Kind, end: float, direction: int) -> float:
    """The first value beyond *end* in *direction* (-1, +1): the next whole number, or the next float."""
    whole = isinstance(kind, keys.Integer) or isinstance(kind, keys.Pair) and kind.whole
    return end + direction if whole else math.nextafter(end, direction * math.inf)


def _edges(kind: keys.Kind) -> list[tuple[object, str, bool]]:
    """(value, where an error names it after the key's path, accepted?) at both ends of a kind's limits."""
    if isinstance(kind, keys.Numeral):
        return [("I", "", True)]  # no range, just an item for a list of them
    if isinstance(kind, keys.Choice):
        return [(kind.options[0], "", True)]  # likewise (a list of patterns or rhythm cells)
    if isinstance(kind, keys.ListOf):
        first = _edges(kind.item)[0][0]
        return [([value], "" if ok else "[0]", ok) for value, _, ok in _edges(kind.item)] + \
            [([], "", kind.fewest == 0), ([first] * kind.most, "", True), ([first] * (kind.most + 1), "", False)]
    if isinstance(kind, keys.Pair):
        low, high, middle = kind.low, kind.high, (kind.low + kind.high) // 2
        return [([low, middle], "", True), ([middle, high], "", True),
                ([_past(kind, low, -1), middle], "[0]", False), ([middle, _past(kind, high, 1)], "[1]", False)]
    beats = keys.TOP.model_default(keys.TOP.key("beats_per_bar"))
    low, high = kind.limits(beats) if isinstance(kind, keys.Number) else (kind.low, kind.high)
    return [(low, "", True), (high, "", True), (_past(kind, low, -1), "", False), (_past(kind, high, 1), "", False)]


def _limit_cases() -> list[tuple[str, object, str, bool]]:
    """(key path, value, path an error must name, accepted?) for every numeric or nullable key declared.

    A section used by several names (the seven emotions) is tried under the first of them.
    """
    cases = []
    for top in keys.TOP.keys:
        kind = top.kind
        if isinstance(kind, keys.Table):
            tables = {top.name: kind.section.keys}
        elif isinstance(kind, keys.Entries):
            tables = {f"{top.name}[0]": kind.section.keys}
        elif isinstance(kind, keys.Named):
            first = {section: name for name, section in reversed(kind.sections.items())}
            tables = {f"{top.name}.{name}": section.keys for section, name in first.items()}
        else:
            tables = {"": (top,)}
        for path, table in tables.items():
            for key in table:
                key_path = f"{path}.{key.name}" if path else key.name
                if _numeric(key.kind):
                    cases += [(key_path, value, key_path + where, ok) for value, where, ok in _edges(key.kind)]
                if key.nullable:
                    cases.append((key_path, None, key_path, True))
    return cases


def _with(raw: dict, key_path: str, value: object) -> dict:
    """*raw* with *value* at *key_path* ("faces.max", "cc[0].rate", "parts.bass.octave")."""
    *tables, key = key_path.split(".")
    node = raw
    for table in tables:
        if table == "cc[0]":
            raw["cc"] = [{"source": "valence", "cc": 1, "channel": 1}]
            node = raw["cc"][0]
        else:
            node = node.setdefault(table, {})
    node[key] = value
    return raw


@pytest.mark.parametrize("key_path, value, error_path, accepted", _limit_cases(),
                         ids=[f"{case[0]}={case[1]!r}" for case in _limit_cases()])
def test_every_declared_limit_is_the_one_enforced(key_path, value, error_path, accepted):
    """Derived from the declaration: each end of every numeric range is accepted, a step past it refused."""
    text = yaml.safe_dump(_with(_limit_base(), key_path, value))
    if accepted:
        parse_mapping(text, "edge.yaml")
    else:
        with pytest.raises(MappingError) as caught:
            parse_mapping(text, "edge.yaml")
        assert caught.value.path == error_path, str(caught.value)


def test_the_limit_cases_cover_every_numeric_key():
    """The walk above reaches every section: no numeric key goes untested."""
    tested = {path.split(".")[-1] for path, *_ in _limit_cases()}
    declared = {key.name for section in keys.sections() for key in section.keys if _numeric(key.kind)}
    assert declared <= tested


def test_smoothing_config_refuses_what_the_mapping_refuses():
    """perception cannot read the mapping, so both read SMOOTHING_LIMITS: the two checks agree at every edge."""
    for key in keys.SMOOTHING.keys:
        if not isinstance(key.kind, keys.Number):
            continue
        for value, _, accepted in _edges(key.kind):
            if accepted:
                SmoothingConfig(**{key.field: value})
            else:
                with pytest.raises(ValueError):
                    SmoothingConfig(**{key.field: value})


def test_the_model_defaults_are_inside_the_declared_limits():
    """What a stand-alone file gets for the keys it leaves out passes the same checks when written out."""
    raw = yaml.safe_load(default_mapping_text())
    minimal = {"extends": "none", "emotions": {name: {key: style[key] for key in keys.EMOTION.required}
                                               for name, style in raw["emotions"].items()}}
    mapping = parse_mapping(yaml.safe_dump(minimal), "minimal.yaml")
    assert parse_mapping(describe_mapping(mapping), "minimal.yaml") == mapping
