"""tempo: follow, without MIDI: the leader's grid from pulse times, and what Start/Continue/Stop/Song Position do."""

from __future__ import annotations

import random

import pytest

from emobridge.live.clock import FIT_PULSES, MasterClock
from emobridge.outputs.clock_in import ArrivalTimes, MidiClockIn


class Now:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def feed(master: MasterClock, now: Now, bpm: float, pulses: int, jitter: float = 0.0, rng=None) -> list[float]:
    """*pulses* clock pulses at *bpm* from now.t on, each off by up to ±*jitter* seconds; returns the ideal times."""
    period = 60 / bpm / 24
    ideal = []
    for _ in range(pulses):
        now.t += period
        ideal.append(now.t)
        master.pulse(now.t + (rng.uniform(-jitter, jitter) if jitter else 0.0))
    return ideal


def test_the_grid_is_the_pulses_line_and_the_tempo_is_exact_without_jitter():
    now = Now()
    master = MasterClock(now)
    feed(master, now, 97.0, 30)
    assert master.tempo == pytest.approx(97.0, rel=1e-9)
    master.start()
    first = now.t + 60 / 97 / 24  # the next pulse is beat 0
    assert master.time_of(0) == pytest.approx(first)
    assert master.time_of(4) == pytest.approx(first + 4 * 60 / 97)
    assert master.beat_at(first + 60 / 97) == pytest.approx(1.0)


def test_one_millisecond_of_jitter_moves_a_beat_by_well_under_a_millisecond():
    rng = random.Random(5)
    now = Now()
    master = MasterClock(now)
    feed(master, now, 97.0, 48, 0.001, rng)
    master.start()
    feed(master, now, 97.0, 1, 0.001, rng)  # beat 0
    errors = []
    for beat in range(1, 41):  # forty beats, each predicted from the pulses before it (as a player waits)
        feed(master, now, 97.0, 23, 0.001, rng)
        predicted = master.time_of(beat)
        ideal = feed(master, now, 97.0, 1, 0.001, rng)
        errors.append(abs(predicted - ideal[-1]))
    errors.sort()
    assert errors[len(errors) // 2] < 0.0005 and errors[-1] < 0.0015
    assert master.tempo == pytest.approx(97.0, abs=0.2)


def test_a_tempo_change_is_followed_within_one_beat():
    now = Now()
    master = MasterClock(now)
    feed(master, now, 97.0, 48)
    master.start()
    feed(master, now, 123.0, FIT_PULSES)  # one beat at the new tempo
    assert master.tempo == pytest.approx(123.0, rel=1e-6)


def test_start_continue_stop_and_song_position():
    now = Now()
    master = MasterClock(now)
    feed(master, now, 120.0, 24)
    assert not master.running
    master.start()
    generation = master.generation
    assert master.running
    feed(master, now, 120.0, 24 * 3 + 1)  # beats 0, 1, 2 and the pulse of beat 3
    assert master.beat_at(now.t) == pytest.approx(3.0)
    master.stop()
    assert not master.running and master.generation > generation
    feed(master, now, 120.0, 24)  # clock goes on while stopped: the song position does not
    master.resume()  # Continue: from where it stopped, the pulse after beat 3's
    assert master.beat_at(now.t + 0.5 / 24) == pytest.approx(3 + 1 / 24)
    master.stop()
    master.song_position(32)  # bar 3 of 4/4 (sixteenth 32 = beat 8)
    master.resume()
    assert master.time_of(8) == pytest.approx(now.t + 0.5 / 24)  # the next pulse is beat 8


def test_the_grid_is_lost_when_pulses_stop_coming():
    now = Now()
    master = MasterClock(now)
    assert not master.locked and master.tempo is None
    feed(master, now, 120.0, 24)
    assert master.locked
    now.t += 1.5  # three beats at 120 BPM without a pulse: the cable is out
    assert not master.locked


def test_arrival_times_come_from_the_deltas_not_from_late_callbacks():
    arrivals = ArrivalTimes(window=8)
    # messages 10 ms apart; the callbacks run 0.1 ms after each, except two that a busy interpreter held 5 ms
    late = {3: 0.005, 4: 0.004}
    times = [arrivals.arrived(0.0 if i == 0 else 0.010, 1.0 + i * 0.010 + 0.0001 + late.get(i, 0.0)) for i in range(8)]
    for i, t in enumerate(times):
        assert t == pytest.approx(1.0 + i * 0.010 + 0.0001, abs=1e-9)


def test_the_clock_input_turns_bytes_into_the_sinks_calls():
    calls = []

    class Sink:
        def pulse(self, t): calls.append(("pulse", t))
        def start(self): calls.append(("start",))
        def resume(self): calls.append(("resume",))
        def stop(self): calls.append(("stop",))
        def song_position(self, sixteenths): calls.append(("position", sixteenths))

    reader = MidiClockIn.__new__(MidiClockIn)  # the parsing alone: no port
    reader.sink, reader.pulses = Sink(), 0
    for message in ([0xF8], [0xFA], [0xFB], [0xFC], [0xF2, 0x20, 0x01], [0x90, 60, 100], []):
        reader.handle(message, 2.0)
    assert calls == [("pulse", 2.0), ("start",), ("resume",), ("stop",), ("position", 0x20 | 1 << 7)]
