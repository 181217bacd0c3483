"""Emotion changes that sound musical: tempo glide, harmony at bar or phrase, blending, humanising, trajectories."""

from __future__ import annotations

import io

import mido
import numpy as np
import pytest

from emobridge.errors import UserError
from emobridge.labels import EMOTIONS
from emobridge.mapping import load_mapping, parse_mapping
from emobridge.music.analysis import notes_of, tempos_of
from emobridge.music.composer import Composer, params_for
from emobridge.music.parts import bar_context
from emobridge.music.render import parse_trajectory, render_midi, simulate_trajectory
from emobridge.theory import scale_pitch_classes
from emobridge.state import EmotionState, state_from_probs

GRID = "humanize: {timing_ms: 0, velocity: 0}\n"


def run(mapping, names, seed=0):
    composer = Composer(mapping, seed)
    return [composer.next_bar(EmotionState.fixed(name)) for name in names]


def blended(**weights: float) -> EmotionState:
    probs = np.array([weights.get(name, 0.0) for name in EMOTIONS])
    return state_from_probs(probs, int(np.argmax(probs)), face=True, time=0.0)


def file_bytes(midi: mido.MidiFile) -> bytes:
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


# --- tempo glide ---

def test_beat_tempos_glide_over_the_configured_beats():
    mapping = parse_mapping("transition: {tempo_glide_beats: 6}", "g.yaml")
    bars = run(mapping, ["sad", "happy", "happy", "happy"])
    sad, happy = bars[0].params.tempo, bars[1].params.tempo
    assert bars[0].beat_tempos == (sad,) * 4
    tempos = bars[1].beat_tempos + bars[2].beat_tempos
    expected = [sad + (happy - sad) * min(1, k / 6) for k in range(1, 9)]
    assert tempos == pytest.approx(expected)
    assert bars[3].beat_tempos == (happy,) * 4
    assert all(bar.params.tempo == happy for bar in bars[1:])  # params.tempo is the target


def test_no_glide_jumps_at_the_bar_line():
    mapping = parse_mapping("transition: {tempo_glide_beats: 0}", "g.yaml")
    bars = run(mapping, ["sad", "happy"])
    assert bars[1].beat_tempos == (bars[1].params.tempo,) * 4


def test_a_new_target_mid_glide_glides_on_from_where_the_tempo_is():
    mapping = parse_mapping("transition: {tempo_glide_beats: 8}", "g.yaml")
    bars = run(mapping, ["sad", "angry", "happy"])
    reached, target = bars[1].beat_tempos[-1], bars[2].params.tempo
    assert bars[2].beat_tempos[0] == pytest.approx(reached + (target - reached) / 8)


# --- harmony at bar or phrase ---

def test_change_at_bar_starts_the_new_progression_from_its_first_chord():
    bars = run(parse_mapping(GRID, "g.yaml"), ["sad"] * 3 + ["happy"] * 2)
    assert [bar.phrase_bar for bar in bars] == [0, 1, 2, 0, 1]
    assert bars[3].params.mode == "major" and bars[3].params.emotion == "happy"
    assert {e.pitch % 12 for e in bars[3].events if e.part == "chords"} == {0, 4, 7}  # I of C major


def test_change_at_phrase_waits_for_the_phrase_to_end_but_numbers_follow_every_bar():
    mapping = parse_mapping(GRID + "transition: {change_at: phrase}", "p.yaml")
    phrase = len(mapping.emotions["sad"].progression)  # 8 bars
    bars = run(mapping, ["sad"] * 3 + ["happy"] * 8)
    for bar in bars[:phrase]:
        assert bar.params.mode == "minor" and bar.params.emotion == "sad"
        own = set(bar_context(bar.params, bar.phrase_bar).chord)  # the half cadence's V brings its leading tone
        assert {e.pitch % 12 for e in bar.events} <= set(scale_pitch_classes(0, "minor")) | own
    assert bars[phrase].params.mode == "major" and bars[phrase].phrase_bar == 0
    assert bars[3].params.pitch_range == mapping.emotions["happy"].pitch_range  # numbers changed at once
    assert bars[3].params.velocity == mapping.emotions["happy"].velocity


def test_an_emotion_can_have_its_own_key():
    mapping = parse_mapping(GRID + "emotions: {sad: {key: A}}", "k.yaml")
    bars = run(mapping, ["happy", "sad", "sad"])
    assert bars[0].params.tonic == 0 and bars[1].params.tonic == 9
    assert {e.pitch % 12 for bar in bars[1:] for e in bar.events} <= set(scale_pitch_classes(9, "minor"))


# --- blending ---

def test_argmax_blend_uses_the_leading_emotion_only():
    mapping = parse_mapping("transition: {blend: argmax}", "a.yaml")
    mix = params_for(blended(happy=0.6, surprise=0.4), mapping)
    happy = params_for(EmotionState.fixed("happy"), mapping)
    assert (mix.pitch_range, mix.velocity, mix.leap, mix.notes_per_bar) == \
        (happy.pitch_range, happy.velocity, happy.leap, happy.notes_per_bar)


def test_probability_blend_sits_between():
    mapping = load_mapping()
    mix = params_for(blended(happy=0.6, surprise=0.4), mapping)
    assert mapping.emotions["happy"].leap < mix.leap < mapping.emotions["surprise"].leap


# --- humanising ---

def test_humanize_off_is_exactly_the_grid():
    bars = run(parse_mapping(GRID, "g.yaml"), ["happy", "fear", "sad"] * 2)
    regular = [bar for bar in bars if bar.params.emotion != "fear"]
    assert all((e.beat * 4) == int(e.beat * 4) for bar in regular for e in bar.events)


def test_humanize_moves_onsets_a_little_and_keeps_the_notes():
    grid = run(parse_mapping(GRID, "g.yaml"), ["happy"] * 4, seed=3)
    human = run(parse_mapping("humanize: {timing_ms: 10, velocity: 6}", "h.yaml"), ["happy"] * 4, seed=3)
    shifts, velocity_changes = [], []
    for a, b in zip(grid, human):
        for part in ("melody", "chords", "bass"):
            ga = sorted((e for e in a.events if e.part == part), key=lambda e: (e.beat, e.pitch))
            hb = sorted((e for e in b.events if e.part == part), key=lambda e: (e.beat, e.pitch))
            assert [e.pitch for e in ga] == [e.pitch for e in hb]  # same notes, its own random stream
            shifts += [h.beat - g.beat for g, h in zip(ga, hb)]
            velocity_changes += [h.velocity - g.velocity for g, h in zip(ga, hb)]
    beat_ms = 60000 / grid[0].params.tempo
    assert 0 < np.std(shifts) * beat_ms < 15 and max(abs(s) for s in shifts) * beat_ms <= 20.5  # cut at 2 SD (onsets rounded to 1e-4 beat)
    assert 2 < np.std(velocity_changes) < 10 and max(abs(v) for v in velocity_changes) <= 13
    for bar in human:  # still inside the bar, and every note ends before its pitch sounds again
        assert all(0 <= e.beat and e.beat + e.duration <= 4 + 1e-9 and e.duration > 0 for e in bar.events)


def test_humanized_legato_never_overlaps_a_repeated_pitch():
    mapping = parse_mapping("humanize: {timing_ms: 40, velocity: 10}", "h.yaml")
    midi = render_midi(run(mapping, ["sad"] * 16, seed=5), mapping)
    ons = sum(1 for track in midi.tracks for m in track if m.type == "note_on" and m.velocity > 0)
    assert len(notes_of(midi)) == ons  # every note-on found its own note-off


def test_humanize_is_deterministic_for_a_seed():
    mapping = load_mapping()
    assert run(mapping, ["happy", "fear"] * 3, seed=2) == run(mapping, ["happy", "fear"] * 3, seed=2)


# --- trajectories ---

def test_parse_trajectory():
    assert parse_trajectory("sad:8,happy:8,angry:8") == [("sad", 8), ("happy", 8), ("angry", 8)]
    assert parse_trajectory(" Sad : 2 , happy:1") == [("sad", 2), ("happy", 1)]


@pytest.mark.parametrize("text, message", [
    ("sad", "is not emotion:bars"),
    ("sad:8,bored:4", "unknown emotion 'bored'"),
    ("sad:x", "bars must be a whole number"),
    ("sad:0", "bars must be a whole number"),
    ("", "is not emotion:bars"),
    ("sad:8,", "is not emotion:bars"),
])
def test_bad_trajectories_say_why_in_one_line(text, message):
    with pytest.raises(UserError, match=message) as error:
        parse_trajectory(text)
    assert "\n" not in str(error.value)


def test_trajectory_renders_the_change_audibly_and_deterministically():
    mapping = load_mapping()
    segments = parse_trajectory("sad:4,happy:4,angry:4")
    midi = simulate_trajectory(segments, 1, mapping)
    assert file_bytes(midi) == file_bytes(simulate_trajectory(segments, 1, mapping))
    beats = 12 * mapping.beats_per_bar
    assert all(sum(m.time for m in track) == beats * midi.ticks_per_beat for track in midi.tracks)
    tempos = tempos_of(midi)
    bar = mapping.beats_per_bar * midi.ticks_per_beat
    sad_tempo = [bpm for tick, bpm in tempos if tick < 4 * bar]
    assert len(set(round(t, 1) for t in sad_tempo)) == 1  # steady while the face holds still
    assert max(bpm for tick, bpm in tempos if 5 * bar <= tick < 8 * bar) > sad_tempo[0] + 40
    assert tempos[-1][1] > max(bpm for tick, bpm in tempos if tick < 8 * bar)  # angry fastest
    rising = [bpm for tick, bpm in tempos if 4 * bar <= tick < 6 * bar]
    assert len(rising) >= 4 and rising == sorted(rising)  # glides up, beat by beat
    melody = [n for n in notes_of(midi) if n.channel == 0]
    first = np.mean([n.velocity for n in melody if n.start < 16])
    last = np.mean([n.velocity for n in melody if n.start >= 40])
    assert last > first + 30


def test_trajectory_refuses_bad_segments():
    with pytest.raises(UserError, match="empty"):
        simulate_trajectory([], 1, load_mapping())
    with pytest.raises(UserError, match="unknown emotion"):
        simulate_trajectory([("bored", 2)], 1, load_mapping())


# --- per-part articulation ---

def test_part_articulation_lengthens_pads_without_overlap():
    plain = run(parse_mapping(GRID, "g.yaml"), ["neutral"] * 4)
    padded = run(parse_mapping(GRID + "parts: {chords: {articulation: 3.0}, bass: {articulation: 0.5}}", "p.yaml"),
                 ["neutral"] * 4)
    for a, b in zip(plain, padded):
        chords_a = [e for e in a.events if e.part == "chords"]
        chords_b = [e for e in b.events if e.part == "chords"]
        assert [(e.beat, e.pitch) for e in chords_a] == [(e.beat, e.pitch) for e in chords_b]
        assert all(y.duration > x.duration for x, y in zip(chords_a, chords_b))
        starts = sorted({e.beat for e in chords_b}) + [4.0]
        assert all(e.beat + e.duration <= starts[starts.index(e.beat) + 1] + 1e-9 for e in chords_b)
        bass_a = [e.duration for e in a.events if e.part == "bass"]
        bass_b = [e.duration for e in b.events if e.part == "bass"]
        assert bass_b == pytest.approx([d / 2 for d in bass_a])
