"""Bars to a Standard MIDI File, and ``simulate``: what the composer plays for a fixed emotion."""

from __future__ import annotations

from collections.abc import Iterable

import mido

from ..labels import emotion_index
from ..mapping import Mapping
from ..smoothing import EmotionState
from .composer import Bar, Composer, NoteEvent


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
        raise ValueError(f"bars must be at least 1, got {bars}")
    composer = Composer(mapping, seed)
    state = EmotionState.fixed(emotion)
    return render_midi([composer.next_bar(state) for _ in range(bars)], mapping)


def _conductor(bars: list[Bar], ticks_per_beat: int) -> tuple[mido.MidiTrack, int]:
    """Tempo and time-signature events at every bar where they change; also returns the end tick."""
    timed: list[tuple[int, mido.MetaMessage]] = []
    tick, tempo, meter = 0, None, None
    for bar in bars:
        bar_tempo = mido.bpm2tempo(bar.params.tempo)
        if bar_tempo != tempo:
            timed.append((tick, mido.MetaMessage("set_tempo", tempo=bar_tempo)))
            tempo = bar_tempo
        if bar.params.beats_per_bar != meter:
            meter = bar.params.beats_per_bar
            timed.append((tick, mido.MetaMessage("time_signature", numerator=meter, denominator=4)))
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
