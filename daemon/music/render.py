"""Bars to a Standard MIDI File; ``simulate`` (one fixed emotion) and ``simulate_trajectory`` (a sequence)."""

from __future__ import annotations

from collections.abc import Iterable

import mido
import numpy as np

from ..errors import UserError
from ..labels import EMOTIONS, emotion_index
from ..mapping import Mapping
from ..perception.smoothing import EmotionSmoother
from ..state import EmotionState
from .params import Bar, NoteEvent
from .composer import Composer

TRAJECTORY_HELP = "comma-separated emotion:bars pairs, e.g. sad:8,happy:8,angry:8"
FACE_LEAD_S = 0.25   # in a trajectory, the face changes this long before the segment's first bar line
FRAME_RATE = 30.0    # frames per second fed to the smoother in a trajectory


def render_midi(bars: Iterable[Bar], mapping: Mapping, ticks_per_beat: int = 480) -> mido.MidiFile:
    """A type-1 file: track 0 holds tempo and time signature, then one track per part on its channel.

    Tracks follow the mapping's enabled parts (named after them, with their program if set);
    a part that only appears in the bars (a mapping changed on the way) gets a track after them.
    """
    bars = list(bars)
    midi = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor, end = _conductor(bars, ticks_per_beat)
    midi.tracks.append(conductor)
    names = [part.name for part in mapping.enabled_parts()]
    names += sorted({event.part for bar in bars for event in bar.events} - set(names))
    for name in names:
        program = next((part.program for part in mapping.parts if part.name == name), None)
        midi.tracks.append(_part_track(name, program, _placed(bars, name, ticks_per_beat), end))
    return midi


def simulate(emotion: str, bars: int, seed: int, mapping: Mapping) -> mido.MidiFile:
    """Render *bars* bars of music for a face that shows only *emotion* (no camera, model or port)."""
    emotion_index(emotion)  # a clear error for an unknown emotion name
    if bars < 1:
        raise UserError(f"bars must be at least 1, got {bars}")
    composer = Composer(mapping, seed)
    state = EmotionState.fixed(emotion)
    return render_midi([composer.next_bar(state) for _ in range(bars)], mapping)


def parse_trajectory(text: str) -> list[tuple[str, int]]:
    """``"sad:8,happy:8"`` -> ``[("sad", 8), ("happy", 8)]``; a UserError with a one-line reason otherwise."""
    segments = []
    for item in text.split(","):
        name, sep, count = item.strip().partition(":")
        if not sep or not name.strip():
            raise UserError(f"trajectory segment {item.strip()!r} is not emotion:bars; expected {TRAJECTORY_HELP}")
        name = name.strip().lower()
        if name not in EMOTIONS:
            raise UserError(f"trajectory segment {item.strip()!r}: unknown emotion {name!r}; "
                            f"use one of {', '.join(EMOTIONS)}")
        try:
            bars = int(count.strip())
        except ValueError:
            bars = 0
        if not 1 <= bars <= 10000:
            raise UserError(f"trajectory segment {item.strip()!r}: bars must be a whole number from 1 to 10000")
        segments.append((name, bars))
    return segments


def simulate_trajectory(segments: list[tuple[str, int]], seed: int, mapping: Mapping) -> mido.MidiFile:
    """Render a face that moves through *segments* (emotion, bars), as the live daemon would play it.

    The face shows each segment's emotion from :data:`FACE_LEAD_S` seconds before the segment's first
    bar line; frames at :data:`FRAME_RATE` go through the real :class:`EmotionSmoother` (time runs at
    the bars' own tempos), and each bar is composed from the smoothed state at its bar line. So the
    first bar of a new segment hears a blend weighted towards the new emotion, and the tempo glides
    and harmony switches as the mapping's ``transition`` says. Deterministic for the seed.
    """
    if not segments:
        raise UserError(f"the trajectory is empty; expected {TRAJECTORY_HELP}")
    for name, bars in segments:
        emotion_index(name)
        if bars < 1:
            raise UserError(f"bars must be at least 1, got {bars} for {name}")
    faces = [name for name, bars in segments for _ in range(bars)]
    composer, smoother = Composer(mapping, seed), EmotionSmoother()
    frame = 1.0 / FRAME_RATE
    now, state = 0.0, _face_state(smoother, faces[0], 0.0)
    for _ in range(round(8.0 / frame)):  # the face has shown the first emotion for a while already
        now += frame
        state = _face_state(smoother, faces[0], now)
    played = []
    for index, _ in enumerate(faces):
        bar = composer.next_bar(state)
        played.append(bar)
        bar_end = now + sum(60.0 / bar.tempo_at(beat) for beat in range(bar.params.beats_per_bar))
        upcoming = faces[min(index + 1, len(faces) - 1)]
        while now + frame <= bar_end + 1e-9:
            now += frame
            state = _face_state(smoother, upcoming if now >= bar_end - FACE_LEAD_S else faces[index], now)
        now = bar_end
        state = _face_state(smoother, upcoming, now)
    return render_midi(played, mapping)


def _face_state(smoother: EmotionSmoother, emotion: str, now: float) -> EmotionState:
    probs = np.zeros(len(EMOTIONS))
    probs[EMOTIONS.index(emotion)] = 1.0
    return smoother.update(probs, now)


def _conductor(bars: list[Bar], ticks_per_beat: int) -> tuple[mido.MidiTrack, int]:
    """Tempo events at every beat whose tempo changes, time signatures where the meter does; also the end tick."""
    timed: list[tuple[int, mido.MetaMessage]] = []
    tick, tempo, meter = 0, None, None
    for bar in bars:
        if bar.params.beats_per_bar != meter:
            meter = bar.params.beats_per_bar
            timed.append((tick, mido.MetaMessage("time_signature", numerator=meter, denominator=4)))
        for beat in range(bar.params.beats_per_bar):
            beat_tempo = mido.bpm2tempo(bar.tempo_at(beat))
            if beat_tempo != tempo:
                timed.append((tick + beat * ticks_per_beat, mido.MetaMessage("set_tempo", tempo=beat_tempo)))
                tempo = beat_tempo
        tick += bar.params.beats_per_bar * ticks_per_beat
    track = mido.MidiTrack([mido.MetaMessage("track_name", name="emobridge")])
    track.extend(_delta(timed, tick))
    return track, tick


def _placed(bars: list[Bar], part: str, ticks_per_beat: int) -> list[tuple[int, mido.Message]]:
    """Absolute-tick note-on/off messages of one part across the bars."""
    timed: list[tuple[int, mido.Message]] = []
    bar_start = 0
    for bar in bars:
        for event in bar.events:
            if event.part == part:
                timed += _note(event, bar_start, ticks_per_beat)
        bar_start += bar.params.beats_per_bar * ticks_per_beat
    # At equal ticks, note-offs go first, so a repeated pitch is released before it sounds again.
    return sorted(timed, key=lambda item: (item[0], item[1].type == "note_on", item[1].note))


def _note(event: NoteEvent, bar_start: int, ticks_per_beat: int) -> list[tuple[int, mido.Message]]:
    start = bar_start + round(event.beat * ticks_per_beat)
    end = max(start + 1, bar_start + round((event.beat + event.duration) * ticks_per_beat))
    return [(start, mido.Message("note_on", channel=event.channel, note=event.pitch, velocity=event.velocity)),
            (end, mido.Message("note_off", channel=event.channel, note=event.pitch, velocity=0))]


def _part_track(name: str, program: int | None, timed: list[tuple[int, mido.Message]], end: int) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name)])
    if program is not None and timed:
        track.append(mido.Message("program_change", channel=timed[0][1].channel, program=program))
    track.extend(_delta(timed, end))
    return track


def _delta(timed: list[tuple[int, mido.BaseMessage]], end: int) -> list[mido.BaseMessage]:
    """Absolute ticks to mido's delta times, closed by end_of_track at *end*."""
    messages, now = [], 0
    for tick, message in timed:
        messages.append(message.copy(time=tick - now))
        now = tick
    messages.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    return messages
