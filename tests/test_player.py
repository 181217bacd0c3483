"""The player on a real JACK port: notes where the composer put them, programs first, nothing left sounding."""

import dataclasses
import statistics
import threading
import time
import uuid

import pytest

from emobridge.mapping import parse_mapping
from emobridge.outputs.midi import MidiOut
from emobridge.music.composer import Composer
from emobridge.live.player import Player
from emobridge.state import EmotionState
from jack_rig import DumpReceiver, Takes, assert_steady_in_some_attempt, jack_period, stuck_notes, wall_times

pytestmark = pytest.mark.jack

GRID = """
humanize: {timing_ms: 0, velocity: 0}
transition: {tempo_glide_beats: 0}
parts:
  melody: {program: 12}
  bass: {program: 34, bank: 130}
"""


def play(seconds: float, emotion: str = "happy", volume: float = 1.0, state=None, midi_clock: bool = False):
    name = f"player-{uuid.uuid4().hex[:6]}"
    midi = MidiOut(name, backend="jack")
    receiver = DumpReceiver(name)
    composer = Composer(parse_mapping(GRID, "grid.yaml"), seed=3)
    bars = []
    player = Player(composer, midi, state or (lambda: EmotionState.fixed(emotion)), on_bar=bars.append,
                    midi_clock=midi_clock)
    player.velocity_scale = volume
    stop = threading.Event()
    thread = threading.Thread(target=player.run, args=(stop,))
    thread.start()
    time.sleep(seconds)
    stop.set()
    thread.join(timeout=5)
    # Everything up to the closing all-notes-off must have crossed JACK (slow under load).
    receiver.wait_for(lambda m: m.kind == 0xB0 and m.message[1] == 123, timeout=3)
    if midi_clock:
        receiver.wait_for(lambda m: m.message == (0xFC,), timeout=3)  # and the clock's Stop
    time.sleep(0.1)
    messages = receiver.snapshot()
    receiver.close()
    midi.close()
    return bars, messages


def grid_errors() -> tuple[list[float], tuple[float, float]]:
    """One take: seconds from each note-on of the first bar to the nearest onset the composer put there, and when
    its notes came (time.monotonic(), from and to)."""
    bars, messages = play(2.5)
    tempo = bars[0].params.tempo
    first_bar = sorted({(e.beat, e.channel, e.pitch) for e in bars[0].events})
    onsets = [m for m in messages if m.is_note_on]
    assert onsets, "nothing arrived"
    t0 = onsets[0].jack_time  # JACK's frame clock: free of the receiver's wake-up jitter under load
    expected = {round(beat * 60 / tempo, 3) for beat, _, _ in first_bar}
    errors = []
    for m in onsets:
        offset = m.jack_time - t0
        if offset >= 4 * 60 / tempo - 0.01:
            break
        errors.append(min(abs(offset - e) for e in expected))
    return errors, (onsets[0].time, onsets[len(errors) - 1].time)


def test_notes_land_on_the_composers_grid(jack_watch):
    # Takes until three that JACK left alone, as the clock tests: one CI run held the player up 199 ms for one note
    # while the other worker ran; notes off the composer's grid would be off in every take.
    takes = Takes(jack_watch)
    for take in takes:
        errors, during = grid_errors()
        if statistics.median(errors) < 0.005 and max(errors) < 0.03:
            return
        take.failed(f"median {statistics.median(errors) * 1000:.1f} ms, max {max(errors) * 1000:.1f} ms", during)
    raise AssertionError(takes.report("no take on the grid"))


def test_program_changes_go_out_before_the_first_note(jack_server):
    _, messages = play(0.5)
    first_note = next(i for i, m in enumerate(messages) if m.is_note_on)
    setup = [m.message for m in messages[:first_note] if m.kind in (0xB0, 0xC0)]
    # program 12 as musicians count is 11 on the wire; bank 130 is MSB 1, LSB 2, before its program
    assert setup == [(0xC0, 11), (0xB2, 0, 1), (0xB2, 32, 2), (0xC2, 33)]


def test_stopping_mid_bar_releases_every_note(jack_server):
    _, messages = play(1.3, emotion="sad")  # legato: notes are sounding at any moment
    assert stuck_notes(messages) == {}
    channels = {m.channel for m in messages if m.is_note_on}
    assert channels <= {m.channel for m in messages if m.kind == 0xB0 and m.message[1] == 123}


def test_a_fade_out_ends_on_time_even_when_no_new_frame_comes(jack_server):
    """Perception stalls (a busy CPU) right as the face is lost: the last state says 'fading over 1 s', and
    the player follows that fade note by note instead of playing on at the level of the last frame."""
    fade: list[EmotionState] = []

    def fading() -> EmotionState:  # the face is lost as the player first looks, not while the ports are opening
        if not fade:
            lost = EmotionState.fixed("happy", time.monotonic())
            fade.append(dataclasses.replace(lost, face=False, presence=1.0, presence_rate=-1.0))
        return fade[0]

    _, messages = play(2.5, state=fading)
    started = fade[0].time
    at = dict(zip(map(id, messages), wall_times(messages)))  # when each note sounded, on the fade's clock
    notes = [m for m in messages if m.is_note_on]
    first = [m.message[2] for m in notes if at[id(m)] < started + 0.3]  # presence 1 to 0.7
    late = [m.message[2] for m in notes if started + 0.65 < at[id(m)] < started + 0.95]  # 0.35 to 0.05
    assert first and late, "the grid should strike notes in both windows"
    assert max(late) < min(first) * 0.75, f"not fading: {first} then {late}"
    after = [m for m in notes if at[id(m)] > started + 1.1]
    assert after == [], f"{len(after)} notes after the fade had ended"


def test_midi_clock_pulses_are_evenly_spaced_at_the_tempo(jack_watch):
    def window() -> tuple[list[float], float, tuple[float, float]]:
        bars, messages = play(3.0, emotion="neutral", midi_clock=True)
        tempo = bars[-1].params.tempo
        system = [m for m in messages if m.message[0] >= 0xF0]
        assert [m.message for m in system[:2]] == [(0xF2, 0, 0), (0xFA,)]  # song position 0, then Start
        assert system[-1].message == (0xFC,)  # Stop on the way out
        return [m.jack_time for m in system if m.message == (0xF8,)], 60 / tempo / 24, (system[0].time, system[-1].time)

    # JACK moves MIDI once per process cycle, so a pulse can land up to one period late; no more.
    assert_steady_in_some_attempt(window, max_error=jack_period() + 0.001, min_pulses=24 * 3, watch=jack_watch)
