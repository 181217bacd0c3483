"""The YAML mapping language: the packaged default, merging, and one clear error per bad file."""

from __future__ import annotations

import re

import pytest
import yaml

from emobridge.labels import EMOTIONS
from emobridge.errors import MappingError
from emobridge.mapping import default_mapping_text, load_mapping, parse_mapping

FULL_HAPPY = ("{tempo: [110, 130], mode: major, progression: [I, IV, V, I], pitch_range: [60, 80], "
              "velocity: [70, 100], density: 8, rhythm: regular}")


def test_default_loads_with_all_emotions_and_parts():
    mapping = load_mapping()
    assert mapping.source == "default"
    assert mapping.tonic == 0 and mapping.beats_per_bar == 4
    assert set(mapping.emotions) == set(EMOTIONS)
    assert [part.name for part in mapping.parts] == ["melody", "chords", "bass", "drums"]
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
