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


# --- the player on a leader's clock, in virtual time ---------------------------------------------

FOLLOW = """
tempo: follow
humanize: {timing_ms: 0, velocity: 0}
"""


class Daw:
    """A DAW's clock on an offline clock: the script's thread sends pulses at a tempo and its transport."""

    def __init__(self, clock, master: MasterClock, stop):
        self.clock, self.master, self.stop = clock, master, stop
        self.pulse_times: list[float] = []  # every pulse, with the song pulse it was (None while stopped)
        self.beats: dict[float, float] = {}  # song beat → its time, for the pulses sent while running
        self.song_pulse: int | None = None

    def run(self, bpm: float, pulses: int) -> None:
        period = 60 / bpm / 24
        for _ in range(pulses):
            self.clock.wait_until(self.clock() + period, self.stop)
            self.master.pulse(self.clock())
            if self.song_pulse is not None:
                if self.song_pulse % 24 == 0:
                    self.beats[self.song_pulse / 24] = self.clock()
                self.song_pulse += 1

    def start(self) -> None:
        self.master.start()
        self.song_pulse = 0

    def stop_(self) -> None:
        self.master.stop()
        self.stopped_at = self.song_pulse
        self.song_pulse = None

    def resume(self, sixteenths: int | None = None) -> None:
        if sixteenths is not None:
            self.master.song_position(sixteenths)
            self.stopped_at = sixteenths * 6
        self.master.resume()
        self.song_pulse = self.stopped_at


def follow_show(script):
    import threading

    from emobridge.live.clock import OfflineClock
    from emobridge.live.player import Player
    from emobridge.mapping import parse_mapping
    from emobridge.music.composer import Composer
    from emobridge.outputs.ports import FakePort
    from emobridge.state import EmotionState

    clock = OfflineClock()
    master = MasterClock(clock)
    port = FakePort(now=clock)
    player = Player(Composer(parse_mapping(FOLLOW, "follow.yaml"), seed=2), port,
                    lambda: EmotionState.fixed("happy"), clock=clock, master=master)
    stop = threading.Event()
    daw = Daw(clock, master, stop)
    clock.enter()
    clock.enter()
    thread = threading.Thread(target=lambda: (player.run(stop), clock.leave()), daemon=True)
    thread.start()
    try:
        script(daw)
    finally:
        stop.set()
        clock.leave()
        thread.join(timeout=10)
    assert not thread.is_alive()
    return daw, port


def held_at(port, t: float) -> set[tuple[int, int]]:
    """(channel, pitch) sounding at clock time *t*, read from the bytes."""
    held: set[tuple[int, int]] = set()
    for sent in port.snapshot():
        if sent.time > t:
            break
        if sent.kind == 0x90 and sent.message[2] > 0:
            held.add((sent.channel, sent.message[1]))
        elif sent.kind in (0x80, 0x90):
            held.discard((sent.channel, sent.message[1]))
        elif sent.kind == 0xB0 and sent.message[1] == 123:
            held = {key for key in held if key[0] != sent.channel}
    return held


def onsets(port, since=0.0, until=float("inf")):
    return [s.time for s in port.snapshot() if s.kind == 0x90 and s.message[2] > 0 and since <= s.time < until]


def test_start_plays_from_beat_0_stop_releases_at_the_next_beat_and_continue_comes_in_on_a_bar_line():
    marks = {}

    def script(daw):
        daw.run(100.0, 48)  # clock while stopped: the tempo is known
        daw.start()
        daw.run(100.0, 24 * 6 + 12)  # six and a half beats: bar 2, beat 3 and a half
        marks["stop"] = daw.clock()
        daw.stop_()
        daw.run(100.0, 48)
        marks["resume"] = daw.clock()
        daw.resume(sixteenths=4 * 5)  # Continue from beat 5 (bar 2, beat 2)
        daw.run(100.0, 24 * 8)

    daw, port = follow_show(script)
    notes = onsets(port)
    # Start: the first note is on the DAW's beat 0, to the microsecond (virtual time)
    assert notes[0] == pytest.approx(daw.beats[0.0], abs=1e-6)
    # Stop: nothing struck after the next beat, everything released by then
    next_beat = marks["stop"] + 0.5 * 60 / 100
    assert onsets(port, next_beat + 1e-6, marks["resume"]) == []
    assert held_at(port, marks["stop"]), "the test should stop the DAW while notes sound"
    assert held_at(port, next_beat + 1e-6) == set()
    # Continue at beat 5: emobridge comes in at the next bar line (song beat 8), on the DAW's beat
    after = onsets(port, marks["resume"])
    assert after and after[0] == pytest.approx(daw.beats[8.0], abs=1e-6)
    assert port.sounding() == set()


def test_the_arousal_moves_density_register_and_loudness_when_the_tempo_is_the_daws():
    from emobridge.mapping import parse_mapping
    from emobridge.music.composer import params_for
    from emobridge.state import EmotionState

    lead, follow = parse_mapping("tempo: lead\n", "lead.yaml"), parse_mapping("tempo: follow\n", "follow.yaml")
    calm, excited = (EmotionState.fixed("happy"), EmotionState.fixed("happy"))
    import dataclasses

    calm = dataclasses.replace(calm, arousal=-1.0)
    excited = dataclasses.replace(excited, arousal=1.0)
    assert params_for(calm, lead).notes_per_bar == params_for(excited, lead).notes_per_bar  # lead: the BPM moves
    low, high = params_for(calm, follow), params_for(excited, follow)
    assert high.notes_per_bar > low.notes_per_bar
    assert high.pitch_range[0] > low.pitch_range[0] and high.velocity[0] > low.velocity[0]


def test_follow_without_a_clock_or_with_a_clock_of_our_own_is_a_one_line_error():
    from emobridge.errors import UserError
    from emobridge.live.wiring import RunConfig, follow_source
    from emobridge.mapping import parse_mapping

    follow, lead = parse_mapping("tempo: follow\n", "f.yaml"), parse_mapping("tempo: lead\n", "l.yaml")
    assert follow_source(RunConfig(), lead) is None
    assert follow_source(RunConfig(clock_in="Live"), lead) == "midi"  # --clock-in alone follows
    with pytest.raises(UserError, match="add --clock-in PORT"):
        follow_source(RunConfig(), follow)
    with pytest.raises(UserError, match="add --clock-in PORT"):
        follow_source(RunConfig(follow="midi"), lead)
    with pytest.raises(UserError, match="--midi-clock sends emobridge's own clock"):
        follow_source(RunConfig(clock_in="Live", midi_clock=True), lead)


def test_the_whole_daemon_follows_a_daws_clock_and_waits_for_it_without_a_stall_report(tmp_path):
    from show import offline_show, play
    from test_show import happy_frames

    from emobridge.live.clock import OfflineClock

    clock = OfflineClock()
    master = MasterClock(clock)
    mapping = tmp_path / "follow.yaml"
    mapping.write_text("tempo: follow\nhumanize: {timing_ms: 0, velocity: 0}\n")
    show = offline_show(happy_frames(), clock=clock, master=master, mapping=str(mapping))
    daw = Daw(clock, master, show.daemon.stop)

    def script():
        daw.run(100.0, 24 * 10)  # the DAW stays stopped for 6 s, sending its clock
        daw.start()
        daw.run(100.0, 24 * 16)  # four bars at 100 BPM
        daw.stop_()
        daw.run(100.0, 24 * 4)

    start = play(show, 20.0, at={0.0: script})
    notes = show.note_ons()
    assert notes and notes[0].time == pytest.approx(daw.beats[0.0], abs=1e-6)  # not before the DAW started
    sixteenth = 60 / 100 / 4
    grid = [daw.beats[0.0] + k * sixteenth for k in range(16 * 4 + 1)]
    assert all(min(abs(n.time - g) for g in grid) < 1e-6 for n in notes)  # every note on the DAW's grid
    tempos = {round(args[0]) for _, args in show.music()}
    assert tempos == {100}, tempos  # the outputs hear the DAW's tempo, not the emotion's
    assert ("player", 0) not in [args for _, args in show.osc.of("status")], "waiting for the DAW is no stall"
    assert show.port.sounding() == set()
    assert start is not None


def test_after_a_silent_clock_the_grid_is_fitted_afresh_and_the_music_comes_in_at_the_next_bar():

    def script(daw):
        daw.run(100.0, 48)
        daw.clock.wait_until(daw.clock() + 5.0, daw.stop)  # no clock while stopped (some DAWs)
        daw.start()
        daw.run(100.0, 24 * 9)

    daw, port = follow_show(script)
    notes = onsets(port)
    # the first pulses after Start cannot lock the grid in time for beat 0: the music comes in at bar 2
    assert notes and notes[0] == pytest.approx(daw.beats[4.0], abs=1e-6)


def test_follow_abletonosc_needs_no_clock_in_and_refuses_one():
    from emobridge.errors import UserError
    from emobridge.live.wiring import RunConfig, follow_source
    from emobridge.mapping import parse_mapping

    lead = parse_mapping("tempo: lead\n", "l.yaml")
    assert follow_source(RunConfig(follow="abletonosc"), lead) == "abletonosc"
    with pytest.raises(UserError, match="use one of them"):
        follow_source(RunConfig(follow="abletonosc", clock_in="Live"), lead)
    with pytest.raises(UserError, match="--link leads"):
        follow_source(RunConfig(follow="link", link=True), lead)
