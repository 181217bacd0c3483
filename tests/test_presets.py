"""Presets by name, the resolved-mapping description, hot-reload polling and the cc: controls."""

from __future__ import annotations

import dataclasses
import re

import pytest

from emobridge.labels import EMOTIONS
from emobridge.mapping import CC_SOURCES, MappingWatcher, default_mapping_text, describe_mapping, list_presets, load_mapping, mapping_path, parse_mapping, preset_is_faithful
from emobridge.mapping import keys
from emobridge.mapping.describe import plain_number
from emobridge.errors import MappingError
from emobridge.music.composer import params_for
from emobridge.music.controls import ControlMapper, control_value, shape
from emobridge.state import EmotionState

# --- presets ---


def test_presets_are_listed_and_load_by_name():
    presets = list_presets()
    assert {"default", "ambient", "driving"} <= set(presets)
    for name in presets:
        mapping = load_mapping(name)
        assert mapping.source == name
        assert set(mapping.emotions) == set(EMOTIONS)
    assert load_mapping("default") == load_mapping()


def test_presets_differ_musically():
    default, ambient, driving = (load_mapping(name) for name in ("default", "ambient", "driving"))
    mean_tempo = {m.source: sum(sum(s.tempo) for s in m.emotions.values()) / 14 for m in (default, ambient, driving)}
    assert mean_tempo["ambient"] < mean_tempo["default"] < mean_tempo["driving"]
    assert driving.part("drums").enabled and not ambient.part("drums").enabled
    assert ambient.transition.change_at == "phrase"
    assert driving.part("bass").velocity_scale > driving.part("chords").velocity_scale
    assert all(ambient.emotions[e].density < default.emotions[e].density for e in EMOTIONS)


def test_every_preset_states_its_claim():
    for name, path in list_presets().items():
        head = path.read_text(encoding="utf-8").splitlines()[0]
        assert re.match(r"#\s*emotion-faithful:\s*(yes|no)\b", head), (name, head)
    assert preset_is_faithful("default")


def test_a_file_wins_over_a_preset_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ambient").write_text("key: D\n", encoding="utf-8")
    assert load_mapping("ambient").tonic == 2
    assert mapping_path("ambient").resolve() == (tmp_path / "ambient").resolve()


def test_unknown_preset_name_lists_the_presets():
    with pytest.raises(MappingError, match=r"no preset of that name.*ambient, default, driving"):
        load_mapping("ambiant")


def test_missing_file_path_still_says_it_cannot_be_read(tmp_path):
    with pytest.raises(MappingError, match="cannot be read"):
        load_mapping(tmp_path / "nope.yaml")


# --- describe_mapping (check-mapping) ---

@pytest.mark.parametrize("name", ["default", "ambient", "driving"])
def test_description_is_a_stand_alone_file_with_the_same_mapping(name):
    mapping = load_mapping(name)
    text = describe_mapping(mapping)
    assert text.startswith(f"# resolved mapping from {name}")
    for key in ("transition:", "tempo_glide_beats:", "humanize:", "timing_ms:", "emotions:", "parts:", "cc:"):
        assert key in text
    again = parse_mapping(text, "described.yaml")
    assert dataclasses.replace(again, source=name) == mapping


def test_description_shows_one_based_channels_and_programs():
    text = describe_mapping(load_mapping("driving"))
    assert "drums: {channel: 10, enabled: true" in text
    assert "program: 81" in text  # the YAML's own GM numbering


# --- hot reload ---

def test_watcher_reports_a_changed_file_once_and_a_bad_one_as_an_error(tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text("key: C\n", encoding="utf-8")
    watcher = MappingWatcher(path)
    assert watcher.path == path and watcher.poll() is None
    path.write_text("key: G\n", encoding="utf-8")
    assert watcher.poll().tonic == 7
    assert watcher.poll() is None
    path.write_text("key: H\n", encoding="utf-8")
    with pytest.raises(MappingError, match="key"):
        watcher.poll()
    assert watcher.poll() is None  # reported once; the caller keeps the old mapping
    path.write_text("key: A\n", encoding="utf-8")
    assert watcher.poll().tonic == 9


def test_watcher_follows_a_preset_name():
    watcher = MappingWatcher("ambient")
    assert watcher.path == list_presets()["ambient"] and watcher.poll() is None


# --- cc: validation ---

def test_cc_entries_are_read_with_defaults():
    mapping = parse_mapping("cc:\n  - {source: arousal, cc: 74, channel: 2}\n"
                            "  - {source: tempo, cc: 91, channel: 16, range: [160, 80], out: [20, 90], "
                            "curve: step, steps: 3, rate: 2}\n", "c.yaml")
    first, second = mapping.controls
    assert (first.source, first.cc, first.channel, first.range, first.out, first.curve, first.steps, first.rate) == \
        ("arousal", 74, 1, (-1.0, 1.0), (0, 127), "linear", 4, 20.0)
    assert (second.channel, second.range, second.out, second.steps) == (15, (160.0, 80.0), (20, 90), 3)
    assert load_mapping().controls == ()
    assert set(CC_SOURCES) == {"valence", "arousal", "confidence", "tempo", "density", *EMOTIONS}


@pytest.mark.parametrize("entry, path", [
    ("{source: arousal, cc: 74, channel: 1, curve: cubic}", r"cc\[2\]\.curve"),
    ("{source: loudness, cc: 74, channel: 1}", r"cc\[2\]\.source"),
    ("{source: arousal, cc: 128, channel: 1}", r"cc\[2\]\.cc"),
    ("{source: arousal, cc: 1, channel: 17}", r"cc\[2\]\.channel"),
    ("{source: arousal, cc: 1}", r"cc\[2\]\.channel: missing"),
    ("{source: arousal, cc: 1, channel: 1, range: [0.5, 0.5]}", r"cc\[2\]\.range"),
    ("{source: arousal, cc: 1, channel: 1, out: [0, 200]}", r"cc\[2\]\.out\[1\]"),
    ("{source: arousal, cc: 1, channel: 1, rate: 0}", r"cc\[2\]\.rate"),
    ("{source: arousal, cc: 1, channel: 1, steps: 1}", r"cc\[2\]\.steps"),
    ("{source: arousal, cc: 1, channel: 1, speed: 3}", r"cc\[2\]\.speed: unknown key"),
    ("7", r"cc\[2\]: expected a mapping"),
])
def test_bad_cc_entries_name_their_key_path(entry, path):
    text = f"cc:\n  - {{source: valence, cc: 1, channel: 1}}\n  - {{source: happy, cc: 2, channel: 1}}\n  - {entry}\n"
    with pytest.raises(MappingError, match=f"^bad.yaml: {path}"):
        parse_mapping(text, "bad.yaml")


@pytest.mark.parametrize("text, path", [
    ("transition: {tempo_glide_beats: -1}", "transition.tempo_glide_beats"),
    ("transition: {change_at: beat}", "transition.change_at"),
    ("transition: {blend: max}", "transition.blend"),
    ("transition: {glide: 4}", "transition.glide"),
    ("humanize: {timing_ms: 80}", "humanize.timing_ms"),
    ("humanize: {velocity: -1}", "humanize.velocity"),
    ("emotions: {sad: {key: H}}", "emotions.sad.key"),
])
def test_bad_transition_and_humanize_keys(text, path):
    with pytest.raises(MappingError, match=f"^bad.yaml: {re.escape(path)}"):
        parse_mapping(text, "bad.yaml")


# --- ControlMapper ---

def test_curves():
    assert [shape(x, "linear", 4) for x in (0, 0.5, 1, 2)] == [0, 0.5, 1, 1]
    assert shape(0, "exponential", 4) == 0 and shape(1, "exponential", 4) == pytest.approx(1)
    assert shape(0.5, "exponential", 4) < 0.25
    assert [shape(x, "step", 4) for x in (0, 0.24, 0.26, 0.6, 0.99, 1)] == \
        pytest.approx([0, 0, 1 / 3, 2 / 3, 1, 1])


def test_control_value_maps_range_to_out_and_can_invert():
    spec = parse_mapping("cc: [{source: tempo, cc: 91, channel: 1, range: [160, 80], out: [20, 90]}]",
                         "c.yaml").controls[0]
    assert control_value(spec, 160) == 20 and control_value(spec, 80) == 90 and control_value(spec, 120) == 55
    assert control_value(spec, 300) == 20  # clamped


def test_mapper_sends_only_changes_and_respects_the_rate():
    mapping = parse_mapping("cc: [{source: happy, cc: 1, channel: 3, rate: 4}, "
                            "{source: density, cc: 2, channel: 3}]", "c.yaml")
    mapper = ControlMapper(mapping)
    happy, sad = EmotionState.fixed("happy"), EmotionState.fixed("sad")
    params = params_for(happy, mapping)
    density = round(params.density * 127)
    assert mapper.update(happy, params, 0.0) == [(2, 1, 127), (2, 2, density)]
    assert mapper.update(happy, params, 0.1) == []            # nothing changed
    assert mapper.update(sad, params, 0.1) == []              # changed, but 4 Hz allows the next at 0.25 s
    assert mapper.update(sad, params, 0.25) == [(2, 1, 0)]    # sent once the rate allows
    assert mapper.update(sad, params, 0.6) == []
    mapper.reset()
    assert len(mapper.update(sad, params, 0.7)) == 2


def test_mapper_keeps_state_of_unchanged_entries_on_reload():
    first = parse_mapping("cc: [{source: happy, cc: 1, channel: 1}]", "c.yaml")
    mapper = ControlMapper(first)
    state = EmotionState.fixed("happy")
    params = params_for(state, first)
    assert mapper.update(state, params, 0.0) == [(0, 1, 127)]
    mapper.set_controls(parse_mapping("cc: [{source: happy, cc: 1, channel: 1}, {source: sad, cc: 2, channel: 1}]",
                                      "c.yaml"))
    assert mapper.update(state, params, 1.0) == [(0, 2, 0)]


def _declared_keys() -> list[tuple[str, keys.Key | None]]:
    """(top-level key, key of its section or None for the top-level key itself) for every declared key."""
    found: list[tuple[str, keys.Key | None]] = []
    for top in keys.TOP.keys:
        kind = top.kind
        nested = [kind.section] if isinstance(kind, (keys.Table, keys.Entries)) else \
            list(kind.sections.values()) if isinstance(kind, keys.Named) else []
        found.append((top.name, None))
        found += list(dict.fromkeys((top.name, key) for section in nested for key in section.keys))
    return found


def _documentation(top_key: str, key: str | None) -> str:
    """What default.yaml says about *key* of the section *top_key* (None: of *top_key* itself), in one line.

    The file has a part per top-level key, each from a "# ---" header; a top-level key starts its line,
    a key of a section is indented, in a comment ("#   tempo:") or in the section itself ("  attack:").
    Its text runs from there to the next line that starts with a key.
    """
    text = default_mapping_text()
    part = next(chunk for chunk in re.split(r"^# ---.*$", text, flags=re.MULTILINE)
                if re.search(rf"^{top_key}:", chunk, re.MULTILINE))
    start = re.search(rf"^{top_key}:" if key is None else rf"^#?\s{{2,}}{key}:", part, re.MULTILINE)
    assert start, f"{top_key} {key or ''} is not documented in default.yaml"
    end = re.compile(r"^#?\s*\w+:", re.MULTILINE).search(part, start.end())
    return " ".join(part[start.start():end.start() if end else None].replace("#", " ").split())


def _range_words(kind: keys.Kind) -> str | None:
    """How default.yaml states a numeric kind's limits: "LOW to HIGH"."""
    if isinstance(kind, keys.ListOf):
        return _range_words(kind.item)
    if not isinstance(kind, (keys.Number, keys.Integer, keys.Pair)):
        return None
    per_beat = " x beats_per_bar" if getattr(kind, "per_beat", False) else ""
    return f"{plain_number(kind.low)} to {plain_number(kind.high)}{per_beat}"


@pytest.mark.parametrize("top_key, key", _declared_keys(),
                         ids=[f"{top}.{key.name}" if key else top for top, key in _declared_keys()])
def test_every_key_of_the_language_is_documented_in_default_yaml(top_key, key):
    """Every declared key has its text in default.yaml, and that text states the declared range or choices."""
    words = _documentation(top_key, key and key.name)
    key = key or keys.TOP.key(top_key)
    if _range_words(key.kind):
        assert _range_words(key.kind) in words, words
    for option in getattr(key.kind, "options", ()):
        assert re.search(rf"(?<!\w){re.escape(option)}(?![\w'])", words), (option, words)  # forms end in '
