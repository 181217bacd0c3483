"""Memory and form: motifs that recur, sections that return, varied repeats, cadences, the new mapping keys."""

from __future__ import annotations

import numpy as np
import pytest

from emobridge.errors import MappingError
from emobridge.mapping import load_mapping, parse_mapping
from emobridge.music.composer import Composer
from emobridge.music.form import form_slots, plan_phrase
from emobridge.music.parts import GM_HIGH_TOM, GM_LOW_TOM, bar_context
from emobridge.music.render import simulate
from emobridge.music.report import measure
from emobridge.state import EmotionState
from emobridge.theory import chord_pitch_classes

GRID = "humanize: {timing_ms: 0, velocity: 0}\n"


def play(mapping, emotion: str, bars: int, seed: int = 0):
    composer = Composer(mapping, seed)
    return [composer.next_bar(EmotionState.fixed(emotion)) for _ in range(bars)]


def notes(bar, part: str | None = None) -> list[tuple[float, int, str]]:
    """What a listener recognises in a bar: onsets and pitches (loudness left out)."""
    return sorted((e.beat, e.pitch, e.part) for e in bar.events if part is None or e.part == part)


def melody_moves(bar) -> list[int]:
    pitches = [e.pitch for e in sorted(bar.events, key=lambda e: e.beat) if e.part == "melody"]
    return list(np.sign(np.diff(pitches)))


@pytest.fixture(scope="module")
def grid():
    return parse_mapping(GRID, "grid.yaml")


def test_the_form_reads_primes_as_consequents():
    assert form_slots("AA'BA'") == [("A", False), ("A", True), ("B", False), ("A", True)]
    assert form_slots("ABAB'") == [("A", False), ("B", False), ("A", False), ("B", True)]


def test_a_return_inside_a_section_is_the_same_music(grid):
    """AA'BA': the last phrase (A' again) replays the second (A') bar for bar; B is other music."""
    bars = play(grid, "happy", 16)
    second, contrast, last = bars[4:8], bars[8:12], bars[12:16]
    assert [notes(b) for b in second] == [notes(b) for b in last]
    assert all(notes(a) != notes(b) for a, b in zip(second, contrast))


def test_the_consequent_starts_like_its_antecedent_and_ends_otherwise(grid):
    bars = play(grid, "happy", 8)
    assert notes(bars[0], "melody") == notes(bars[4], "melody")      # the motif stated again
    assert notes(bars[3], "melody") != notes(bars[7], "melody")      # open ending, then a closed one
    assert bars[3].params.progression[-1] == "V" and bars[7].params.progression[-1] == "I"


def test_the_motif_is_stated_then_sequenced_on_the_next_chord(grid):
    bars = play(grid, "happy", 2)
    first, second = (notes(b, "melody") for b in bars)
    assert [beat for beat, *_ in first] == [beat for beat, *_ in second]  # the same rhythm
    assert melody_moves(bars[0]) == melody_moves(bars[1])                  # the same shape
    assert first[0][1] != second[0][1]                                     # from another chord tone
    assert second[0][1] % 12 in bar_context(bars[1].params, 1).chord


def test_repeats_of_the_form_vary_but_keep_the_motif(grid):
    """The second time round the form: some bars differ (reharmonised, other patterns), the opening motif's
    rhythm and shape recur."""
    bars = play(grid, "happy", 32)
    first, again = bars[:16], bars[16:]
    assert sum(notes(a) != notes(b) for a, b in zip(first, again)) >= 4
    assert [beat for beat, *_ in notes(first[0], "melody")] == [beat for beat, *_ in notes(again[0], "melody")]
    assert melody_moves(first[0]) == melody_moves(again[0])
    progressions = {bar.params.progression for bar in bars}
    assert len(progressions) >= 3  # several progressions, phrase by phrase


def test_several_progressions_and_secondary_dominants_are_chosen_phrase_by_phrase():
    mapping = load_mapping()
    seen = set()
    style = mapping.emotions["happy"]
    from emobridge.music.composer import params_for
    params = params_for(EmotionState.fixed("happy"), mapping)
    for phrase in range(40):
        seen.update(plan_phrase(params, 1, phrase).progression)
    assert set(style.progressions[0]) <= {n.split("|")[0] for n in seen} | {"V"}
    assert any("/" in numeral for numeral in seen)  # a secondary dominant somewhere in ten cycles
    assert any("|" in numeral for numeral in seen)  # a bar of two chords before a cadence


def test_the_motif_survives_an_emotion_change_transformed(grid):
    """At a change the interrupted phrase starts again in the new emotion: its motif's shape, now in the new
    key, mode, register and rhythm."""
    composer = Composer(grid, 0)
    happy = composer.next_bar(EmotionState.fixed("happy"))
    composer.next_bar(EmotionState.fixed("happy"))
    sad = composer.next_bar(EmotionState.fixed("sad"))
    shared = min(len(melody_moves(happy)), len(melody_moves(sad)))
    assert shared >= 2 and melody_moves(happy)[:shared] == melody_moves(sad)[:shared]
    assert notes(happy, "melody") != notes(sad, "melody")
    assert max(p for _, p, _ in notes(sad, "melody")) <= grid.emotions["sad"].pitch_range[1]


def test_same_seed_same_music_other_seed_other_music():
    mapping = load_mapping()
    one, again, other = (simulate("neutral", 48, seed, mapping) for seed in (3, 3, 4))
    as_notes = [[(m.type, m.note, m.time) for m in track if m.type in ("note_on", "note_off")]
                for track in (one.tracks[1], again.tracks[1], other.tracks[1])]
    assert as_notes[0] == as_notes[1] and as_notes[0] != as_notes[2]


def test_a_long_hold_keeps_changing_its_accompaniment_and_density():
    report = measure(simulate("happy", 96, 1, load_mapping()))
    assert report.accompaniment_bars >= 12
    assert report.block_density_change > 0
    assert report.bar_repetition > 0.1 and report.pattern_recurrence > 0.03  # and it remembers


def test_phrase_dynamics_swell_and_the_accents_follow_them():
    """Within a phrase the melody grows towards two thirds of the way and falls back (arch dynamics), so
    the loudness of note after note is positively autocorrelated."""
    bars = play(parse_mapping(GRID, "g.yaml"), "neutral", 4)
    means = [np.mean([e.velocity for e in bar.events if e.part == "melody"]) for bar in bars]
    assert means[2] > means[0] and means[2] > means[3]
    assert measure(simulate("neutral", 32, 1, load_mapping())).velocity_lag1 > 0


def test_drums_fill_the_last_beat_of_a_phrase_unless_told_not_to():
    with_fills = play(parse_mapping(GRID + "parts: {drums: {enabled: true}}", "d.yaml"), "angry", 4)
    without = play(parse_mapping(GRID + "parts: {drums: {enabled: true, fills: false}}", "d.yaml"), "angry", 4)
    toms = {GM_HIGH_TOM, GM_LOW_TOM}
    assert {e.pitch for e in with_fills[3].events if e.part == "drums" and e.beat >= 3} & toms
    assert not any(e.pitch in toms for bar in with_fills[:3] + without for e in bar.events if e.part == "drums")


@pytest.mark.parametrize("pattern", ["block", "arpeggio", "broken", "comping"])
def test_every_accompaniment_pattern_plays_the_chord(pattern):
    mapping = parse_mapping(GRID + f"parts: {{chords: {{pattern: {pattern}}}}}\n"
                            "emotions: {neutral: {extensions: 0, tension: 0}}", "c.yaml")
    bars = play(mapping, "neutral", 3)
    for bar in bars:
        chord = set(bar_context(bar.params, bar.phrase_bar).chord)
        assert {e.pitch % 12 for e in bar.events if e.part == "chords" and e.beat < 2} <= chord
    onsets = {tuple(sorted({e.beat for e in bar.events if e.part == "chords"})) for bar in bars}
    assert all(onsets)
    if pattern in ("arpeggio", "broken"):  # one note at a time
        assert all(len({e.pitch for e in bar.events if e.part == "chords" and e.beat == 0.5}) == 1 for bar in bars)


def test_new_keys_are_read_from_the_file():
    mapping = parse_mapping(
        "emotions:\n  happy:\n    progressions: [[I, V/V, V, I], [vi, IV, ii, V7]]\n    form: \"ABAB'\"\n"
        "    cells: [triplet, quarter]\n    accompaniment: [arpeggio]\n    bass_line: [walking, pedal]\n"
        "    reharmonise: 0\n    extensions: 0.5\n    tension: 0.25\n    dynamics: terraced\n    swell: 0.9\n"
        "parts:\n  chords: {pattern: comping}\n  bass: {pattern: null}\n  drums: {fills: false}\n", "new.yaml")
    happy = mapping.emotions["happy"]
    assert happy.progressions == (("I", "V/V", "V", "I"), ("vi", "IV", "ii", "V7"))
    assert (happy.form, happy.cells, happy.accompaniment, happy.bass_line) == \
        ("ABAB'", ("triplet", "quarter"), ("arpeggio",), ("walking", "pedal"))
    assert (happy.reharmonise, happy.extensions, happy.tension, happy.dynamics, happy.swell) == \
        (0.0, 0.5, 0.25, "terraced", 0.9)
    assert mapping.part("chords").pattern == "comping" and mapping.part("bass").pattern is None
    assert mapping.part("drums").fills is False
    assert chord_pitch_classes("V/V", 0, "major") == (2, 6, 9)


@pytest.mark.parametrize("text, path", [
    ("emotions: {happy: {cells: [quarter, swing]}}", "emotions.happy.cells[1]"),
    ("emotions: {happy: {accompaniment: [strum]}}", "emotions.happy.accompaniment[0]"),
    ("emotions: {happy: {bass_line: []}}", "emotions.happy.bass_line"),
    ("emotions: {happy: {form: ABBA}}", "emotions.happy.form"),
    ("emotions: {happy: {progressions: [[I, V/X]]}}", "emotions.happy.progressions[0][1]"),
    ("emotions: {happy: {progressions: [[I, ii/V]]}}", "emotions.happy.progressions[0][1]"),
    ("emotions: {happy: {tension: 1.5}}", "emotions.happy.tension"),
    ("parts: {chords: {pattern: walking}}", "parts.chords.pattern"),
    ("parts: {bass: {pattern: arpeggio}}", "parts.bass.pattern"),
    ("parts: {melody: {pattern: block}}", "parts.melody.pattern"),
    ("parts: {drums: {fills: 3}}", "parts.drums.fills"),
])
def test_bad_values_of_the_new_keys_are_refused_in_one_line(text, path):
    with pytest.raises(MappingError) as caught:
        parse_mapping(text, "bad.yaml")
    assert caught.value.path == path and "\n" not in str(caught.value)


def test_the_counter_melody_is_off_by_default_and_moves_against_the_tune_when_on():
    assert not any(e.part == "counter" for bar in play(parse_mapping(GRID, "g.yaml"), "happy", 4) for e in bar.events)
    mapping = parse_mapping(GRID + "parts: {counter: {enabled: true}}", "c.yaml")
    bars = play(mapping, "happy", 16)
    contrary = parallel = 0
    for bar in bars:
        context = bar_context(bar.params, bar.phrase_bar)
        line = sorted((e.beat, e.pitch) for e in bar.events if e.part == "counter")
        tune = sorted((e.beat, e.pitch) for e in bar.events if e.part == "melody")
        assert line and all(e.channel == 3 for e in bar.events if e.part == "counter")  # channel 4
        assert all(pitch % 12 in context.chord_at(beat, 4) for beat, pitch in line)
        for (start, pitch), (later, after) in zip(line, line[1:]):
            struck = [p for b, p in tune if b <= start][-1], [p for b, p in tune if b <= later][-1]
            moves = (after - pitch) * (struck[1] - struck[0])  # both lines between the same two onsets
            contrary += moves < 0
            parallel += moves > 0
    assert contrary > 2 * parallel
