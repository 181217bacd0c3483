"""Music theory, the part generators and the composer."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emobridge.labels import EMOTIONS
from emobridge.mapping import load_mapping, parse_mapping
from emobridge.music.composer import Composer, params_for
from emobridge.music.parts import SLOTS_PER_BEAT, bar_context, is_strong
from emobridge.theory import chord_pitch_classes, movement, parse_roman, scale_pitch_classes, voice_chord, voice_progression
from emobridge.state import EmotionState, state_from_probs


@pytest.fixture(scope="module")
def mapping():
    """The default mapping on the exact grid (humanize off), so note positions can be checked exactly."""
    return parse_mapping("humanize: {timing_ms: 0, velocity: 0}", "grid.yaml")


def blended(**weights: float) -> EmotionState:
    probs = np.array([weights.get(name, 0.0) for name in EMOTIONS])
    return state_from_probs(probs, int(np.argmax(probs)), face=True, time=0.0)


def play(mapping, emotion: str, bars: int, seed: int = 0):
    composer = Composer(mapping, seed)
    return [composer.next_bar(EmotionState.fixed(emotion)) for _ in range(bars)]


# --- theory ---

@pytest.mark.parametrize("tonic, mode, expected", [
    (0, "major", (0, 2, 4, 5, 7, 9, 11)),
    (9, "minor", (9, 11, 0, 2, 4, 5, 7)),           # A minor: the white keys from A
    (2, "dorian", (2, 4, 5, 7, 9, 11, 0)),          # D dorian: the white keys from D
    (4, "phrygian", (4, 5, 7, 9, 11, 0, 2)),
    (5, "lydian", (5, 7, 9, 11, 0, 2, 4)),
    (7, "mixolydian", (7, 9, 11, 0, 2, 4, 5)),
    (9, "harmonic_minor", (9, 11, 0, 2, 4, 5, 8)),  # raised seventh: G sharp
])
def test_scales(tonic, mode, expected):
    assert scale_pitch_classes(tonic, mode) == expected


@pytest.mark.parametrize("numeral, mode, expected", [
    ("I", "major", (0, 4, 7)),
    ("ii", "major", (2, 5, 9)),
    ("V7", "major", (7, 11, 2, 5)),       # dominant seventh
    ("Imaj7", "major", (0, 4, 7, 11)),
    ("vii°", "major", (11, 2, 5)),
    ("viio7", "harmonic_minor", (11, 2, 5, 8)),  # fully diminished
    ("bVII", "major", (10, 2, 5)),        # borrowed from minor
    ("i", "minor", (0, 3, 7)),
    ("VI", "minor", (8, 0, 3)),           # degrees count in the mode: A flat in C minor
    ("III+", "harmonic_minor", (3, 7, 11)),
    ("iiø7", "minor", (2, 5, 8, 0)),
    ("II", "lydian", (2, 6, 9)),
])
def test_roman_numerals_in_c(numeral, mode, expected):
    assert chord_pitch_classes(numeral, 0, mode) == expected


@pytest.mark.parametrize("numeral", ["VIII", "iV", "IV°", "vi+", "x", "", "I9", "bb"])
def test_bad_roman_numerals_are_refused(numeral):
    with pytest.raises(ValueError):
        parse_roman(numeral)


def test_voice_leading_moves_far_less_than_block_chords():
    progression = tuple(chord_pitch_classes(n, 0, "major") for n in ("I", "IV", "V", "I"))
    voicings = voice_progression(progression, 55, 72)
    assert all(55 <= p <= 72 for voicing in voicings for p in voicing)
    assert [sorted({p % 12 for p in v}) for v in voicings] == [sorted(set(c)) for c in progression]
    led = [movement(a, b) for a, b in zip(voicings, voicings[1:] + voicings[:1])]
    assert max(led) <= 6  # every change, the loop back included, is a few semitones in all
    assert max(abs(x - y) for a, b in zip(voicings, voicings[1:]) for x, y in zip(a, b)) <= 3
    block = [tuple(48 + c[0] + (pc - c[0]) % 12 for pc in c) for c in progression]  # root position everywhere
    assert sum(led) < sum(movement(a, b) for a, b in zip(block, block[1:] + block[:1])) / 2


def test_voice_chord_without_previous_sits_in_the_middle():
    voicing = voice_chord((0, 4, 7), None, 48, 84)
    assert abs(np.mean(voicing) - 66) <= 6


# --- composer and parts ---

def test_every_note_is_in_key_and_mode_or_in_its_chord(mapping):
    """Notes come from the scale; the only others are the tones of the bar's own chord (a secondary
    dominant such as V/V, a borrowed chord, the major V of a minor half cadence)."""
    for emotion in EMOTIONS:
        style = mapping.emotions[emotion]
        scale = set(scale_pitch_classes(mapping.tonic, style.mode))
        for bar in play(mapping, emotion, 32):
            context = bar_context(bar.params, bar.phrase_bar)
            chord_tones = set(context.chord) | set(context.second or ())
            stray = {e.pitch % 12 for e in bar.events} - scale - chord_tones
            assert not stray, (emotion, bar.index, bar.params.progression[bar.phrase_bar], stray)


def test_other_key_and_mode_from_the_mapping():
    dorian = parse_mapping("key: D\nemotions:\n  neutral: {mode: dorian, progression: [i, IV, i, v]}\n", "d.yaml")
    bars = play(dorian, "neutral", 8)
    assert {e.pitch % 12 for bar in bars for e in bar.events} <= set(scale_pitch_classes(2, "dorian"))
    assert bars[0].params.tonic == 2 and bars[0].params.mode == "dorian"
    # the second bar's harmony is D dorian's IV: G major, not the G minor of D natural minor
    assert {e.pitch % 12 for e in bars[1].events if e.part == "chords"} == {7, 11, 2}


def test_chords_follow_the_progression_with_small_motion():
    """Block chords without added tones: each bar sounds its chord (the first half of a split bar), voice-led."""
    plain = parse_mapping("humanize: {timing_ms: 0, velocity: 0}\nparts: {chords: {pattern: block}}\n"
                          "emotions: {happy: {extensions: 0, tension: 0}}", "plain.yaml")
    bars = play(plain, "happy", 16)
    voicings = [tuple(sorted({e.pitch for e in bar.events if e.part == "chords" and e.beat < 2})) for bar in bars]
    for bar, voicing in zip(bars, voicings):
        context = bar_context(bar.params, bar.phrase_bar)
        if context.cadence:  # the closing chord may suspend its third (below)
            continue
        assert sorted({p % 12 for p in voicing}) == sorted(set(context.chord)), (bar.index, bar.params.progression)
    # voice-led inside a phrase (a new section's progression is voiced afresh from its own loop)
    inside = [(a, b) for a, b, bar in zip(voicings, voicings[1:], bars[1:]) if 0 < bar.phrase_bar]
    moves = [movement(a, b) for a, b in inside]
    assert moves and max(moves) <= 9 and np.mean(moves) <= 5  # block chords would move about 12 a change


def test_a_consequent_closes_with_a_4_3_suspension_and_an_antecedent_on_a_plain_dominant():
    bars = play(parse_mapping("humanize: {timing_ms: 0, velocity: 0}", "g.yaml"), "happy", 8)
    antecedent, consequent = bars[3], bars[7]
    assert {e.pitch % 12 for e in antecedent.events if e.part == "chords"} >= {7, 11, 2}  # V
    first = {e.pitch % 12 for e in consequent.events if e.part == "chords" and e.beat == 0}
    later = {e.pitch % 12 for e in consequent.events if e.part == "chords" and e.beat == 1}
    assert 5 in first and 4 not in first and later == {4}  # F held over C G, falling to E on beat two


def test_melody_has_chord_tones_on_strong_beats_and_moves_mostly_by_step(mapping):
    bars = play(mapping, "happy", 32)
    slots = mapping.beats_per_bar * SLOTS_PER_BEAT
    melody = []
    for bar in bars:
        context = bar_context(bar.params, bar.phrase_bar)
        notes = [e for e in bar.events if e.part == "melody"]
        strong = [e for e in notes if e.beat * SLOTS_PER_BEAT == int(e.beat * SLOTS_PER_BEAT)
                  and is_strong(round(e.beat * SLOTS_PER_BEAT), slots)]
        assert strong and all(e.pitch % 12 in context.chord_at(e.beat, 4) for e in strong)
        melody += notes
    intervals = np.abs(np.diff([e.pitch for e in melody]))
    assert np.mean(intervals <= 2) >= 0.6  # steps of a second (or repeated notes) dominate
    low, high = mapping.emotions["happy"].pitch_range
    assert all(low <= e.pitch <= high for e in melody)


def test_bass_plays_roots_and_fifths_below_the_chords():
    roots = parse_mapping("humanize: {timing_ms: 0, velocity: 0}\nparts: {bass: {pattern: root}}", "roots.yaml")
    for emotion in ("sad", "happy", "angry"):
        for bar in play(roots, emotion, 8):
            context = bar_context(bar.params, bar.phrase_bar)
            bass = [e for e in bar.events if e.part == "bass"]
            chords = [e.pitch for e in bar.events if e.part == "chords"]
            assert bass[0].beat == 0 and bass[0].pitch % 12 == context.chord[0]
            for e in bass:
                chord = context.chord_at(e.beat, 4)
                assert e.pitch % 12 in {chord[0], chord[2]}
            assert max(e.pitch for e in bass) < np.mean(chords)


@pytest.mark.parametrize("pattern", ["pedal", "octave", "walking", "syncopated"])
def test_every_bass_pattern_starts_the_bar_low_and_stays_in_key(pattern):
    mapping = parse_mapping(f"humanize: {{timing_ms: 0, velocity: 0}}\nparts: {{bass: {{pattern: {pattern}}}}}", "b.yaml")
    bars = play(mapping, "neutral", 8)
    onsets = [tuple(e.beat for e in bar.events if e.part == "bass") for bar in bars if bar.phrase_bar != 3]
    assert all(onsets) and all(o[0] == 0 for o in onsets)
    scale = set(scale_pitch_classes(0, "major"))
    for bar in bars:
        context = bar_context(bar.params, bar.phrase_bar)
        tones = set(context.chord) | set(context.second or ())
        assert {e.pitch % 12 for e in bar.events if e.part == "bass"} <= scale | tones
    default = play(parse_mapping("humanize: {timing_ms: 0, velocity: 0}\nparts: {bass: {pattern: root}}", "r.yaml"),
                   "neutral", 8)
    assert [[(e.beat, e.pitch) for e in b.events if e.part == "bass"] for b in bars] != \
        [[(e.beat, e.pitch) for e in b.events if e.part == "bass"] for b in default]


def test_phrase_ends_close_on_the_tonic_or_open_on_the_dominant(mapping):
    """Consequent phrases (A' in the form) end their melody on the tonic; antecedents end open, on the
    root or fifth of the dominant they stop on (a half cadence)."""
    bars = play(mapping, "happy", 16)
    phrase = len(mapping.emotions["happy"].progression)
    endings = []
    for bar in bars[phrase - 1::phrase]:
        last = max((e for e in bar.events if e.part == "melody"), key=lambda e: e.beat)
        numeral = bar.params.progression[-1]
        endings.append(numeral)
        if numeral == "I":
            assert last.pitch % 12 == mapping.tonic
        else:
            assert numeral == "V" and last.pitch % 12 in (7, 2)  # G major's root or fifth
    assert endings == ["V", "I", "V", "I"]  # AA'BA': open, closed, open, closed


def test_same_seed_same_bars_other_seed_other_melody(mapping):
    states = [blended(happy=0.7, surprise=0.3), EmotionState.fixed("fear"), blended(sad=0.5, neutral=0.4, angry=0.1)]
    first, second, other = Composer(mapping, 7), Composer(mapping, 7), Composer(mapping, 8)
    for state in states * 3:
        bar = first.next_bar(state)
        assert bar == second.next_bar(state)
        assert [e for e in bar.events if e.part == "melody"] != [e for e in other.next_bar(state).events
                                                                 if e.part == "melody"]


def test_parts_play_on_their_own_channels():
    moved = parse_mapping("parts: {melody: {channel: 5}, drums: {enabled: true}}", "m.yaml")
    channels = {(e.part, e.channel) for bar in play(moved, "angry", 4) for e in bar.events}
    assert channels == {("melody", 4), ("chords", 1), ("bass", 2), ("drums", 9)}


def test_disabling_a_part_removes_only_its_notes(mapping):
    without_chords = parse_mapping("parts: {chords: {enabled: false}}", "m.yaml")  # humanized, as the default
    full, reduced = play(load_mapping(), "neutral", 4), play(without_chords, "neutral", 4)
    assert not any(e.part == "chords" for bar in reduced for e in bar.events)
    assert all(e.channel != 1 for bar in reduced for e in bar.events)
    # every part draws from its own random stream, so the others play exactly the same notes
    for a, b in zip(full, reduced):
        assert [e for e in a.events if e.part != "chords"] == list(b.events)


def test_notes_stay_inside_their_bar(mapping):
    for emotion in EMOTIONS:
        for bar in play(mapping, emotion, 8):
            beats = bar.params.beats_per_bar
            assert all(0 <= e.beat < beats and 0 < e.duration and e.beat + e.duration <= beats + 1e-9
                       for e in bar.events)
            assert all(1 <= e.velocity <= 127 and 0 <= e.pitch <= 127 for e in bar.events)


def test_params_change_only_at_bar_boundaries(mapping):
    composer = Composer(mapping, 0)
    sad = composer.next_bar(EmotionState.fixed("sad"))
    happy = composer.next_bar(EmotionState.fixed("happy"))
    # every number is the state's; the progression is the one the form's plan chose for the phrase
    for bar, emotion in ((sad, "sad"), (happy, "happy")):
        expected = params_for(EmotionState.fixed(emotion), mapping)
        assert bar.params == dataclasses.replace(expected, progression=bar.params.progression, phrase=bar.params.phrase)
        assert bar.params.progression[0] == mapping.emotions[emotion].progression[0]
    assert (sad.index, happy.index) == (0, 1)
    sad_range, happy_range = mapping.emotions["sad"].pitch_range, mapping.emotions["happy"].pitch_range
    assert all(sad_range[0] <= e.pitch <= sad_range[1] for e in sad.events if e.part == "melody")
    assert all(happy_range[0] <= e.pitch <= happy_range[1] for e in happy.events if e.part == "melody")


def test_set_mapping_takes_effect_at_the_next_bar(mapping):
    composer = Composer(mapping, 0)
    before = composer.next_bar(EmotionState.fixed("happy"))
    composer.set_mapping(parse_mapping("key: G\nparts: {bass: {enabled: false}}", "g.yaml"))
    after = composer.next_bar(EmotionState.fixed("happy"))
    assert before.params.tonic == 0 and any(e.part == "bass" for e in before.events)
    assert after.params.tonic == 7 and not any(e.part == "bass" for e in after.events)
    assert {e.pitch % 12 for e in after.events} <= set(scale_pitch_classes(7, "major"))


def test_blend_of_happy_and_surprise_sits_in_between(mapping):
    happy = params_for(EmotionState.fixed("happy"), mapping)
    surprise = params_for(EmotionState.fixed("surprise"), mapping)
    mix = params_for(blended(happy=0.6, surprise=0.4), mapping)
    assert happy.tempo < mix.tempo < surprise.tempo
    assert happy.pitch_range[1] < mix.pitch_range[1] < surprise.pitch_range[1]
    assert happy.leap < mix.leap < surprise.leap
    assert mix.mode == "major" and mix.progression == happy.progression and mix.emotion == "happy"


def test_arousal_picks_the_tempo_inside_the_range(mapping):
    calm = dataclasses.replace(EmotionState.fixed("neutral"), arousal=-1.0)
    excited = dataclasses.replace(EmotionState.fixed("neutral"), arousal=1.0)
    low, high = mapping.emotions["neutral"].tempo
    assert params_for(calm, mapping).tempo == pytest.approx(low)
    assert params_for(excited, mapping).tempo == pytest.approx(high)


def test_density_is_normalised_for_osc(mapping):
    for emotion in EMOTIONS:
        params = params_for(EmotionState.fixed(emotion), mapping)
        assert 0 < params.density <= 1
        assert params.density == pytest.approx(mapping.emotions[emotion].density / (4 * mapping.beats_per_bar))
