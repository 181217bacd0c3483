"""tempo: follow on a real JACK server: a python-rtmidi clock sender plays the DAW, emobridge plays on its beats.

The sender runs at 97 BPM with ±1 ms of jitter on every pulse, then changes to 123 BPM. emobridge reads the
clock with python-rtmidi (--clock-in) and plays through its JACK-native port (frame-exact); one JACK-Client
input hears both the clock and the notes and keeps the frame each arrives at, so both are timed on JACK's
frame clock, to the sample. (python-rtmidi's JACK ports move MIDI at the start of a cycle: measured through
them, a note a little late for its cycle would count a whole cycle off.)
"""

from __future__ import annotations

import random
import statistics
import threading
import time
import uuid
from dataclasses import dataclass

import pytest
import rtmidi

from emobridge.live.clock import MasterClock, wait_until
from emobridge.live.player import Player
from emobridge.mapping import parse_mapping
from emobridge.music.composer import Composer
from emobridge.outputs.clock_in import MidiClockIn
from emobridge.outputs.jack_out import JackMidiOut
from emobridge.state import EmotionState
from jack_rig import MidiDump, Takes, jack_module

pytestmark = pytest.mark.jack

FOLLOW = """
tempo: follow
humanize: {timing_ms: 0, velocity: 0}
parts:
  drums: {enabled: true}
"""
JITTER = 0.001  # seconds either way, on every pulse
PRE_ROLL_BEATS = 2  # clock while the DAW is stopped: the tempo is known at Start
BEATS_AT_97, BEATS_AT_123 = 8, 8
FOLLOW_BOUND = 0.005  # seconds: the median note-on error to the clock's sixteenths, locked and after a change


class ClockSender:
    """A DAW's MIDI clock: pulses at a tempo with jitter, Start, a tempo change, Stop (a thread of its own)."""

    def __init__(self, name: str, seed: int = 7):
        self.port = rtmidi.MidiOut(rtmidi.API_UNIX_JACK, name=name)
        self.port.open_virtual_port(name)
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.sent: list[float] = []  # monotonic time each pulse after Start was sent, jitter and all
        self.change_beat = BEATS_AT_97

    def play(self) -> None:
        t = time.monotonic() + 0.05
        period = 60 / 97 / 24
        for _ in range(PRE_ROLL_BEATS * 24):
            t = self._pulse(t, period)
        self.port.send_message([0xFA])  # Start: the next pulse is beat 0
        for beat in range(BEATS_AT_97 + BEATS_AT_123):
            period = 60 / (97 if beat < self.change_beat else 123) / 24
            for _ in range(24):
                t = self._pulse(t, period, keep=True)
        self.port.send_message([0xFC])  # Stop

    def _pulse(self, t: float, period: float, keep: bool = False) -> float:
        wait_until(t + self.rng.uniform(-JITTER, JITTER), self.stop)
        self.port.send_message([0xF8])
        if keep:
            self.sent.append(time.monotonic())
        return t + period

    def close(self) -> None:
        self.port.close_port()
        self.port.delete()


@dataclass(frozen=True)
class FollowTake:
    """One take of following: *faults*, checks it failed that must hold in every take JACK left alone; the median
    note-on errors (seconds) locked at 97 BPM and after the change; a line on it; when its messages came."""
    faults: list[str]
    at_97: float
    after_change: float
    summary: str
    during: tuple[float, float]


def pulse_train(received: list[float], played: int) -> list[float]:
    """The *played* pulses as the sender played them, rebuilt from the *received* times.

    A monitor now and then loses a cycle's events (JACK2 skips a client's cycle when a client upstream of it is
    late; emobridge's JACK-native output is a Python client, late for a cycle on a busy machine): a lost pulse
    leaves a gap of two, filled here at its middle. Then as many pulses as were received too many (a copy comes
    in its original's cycle) are dropped where two came closest, and no more: two pulses that a late sender
    sent at once share a cycle too."""
    pulses = received[:2]
    for t in received[2:]:
        recent = pulses[-6:]
        usual = statistics.median(b - a for a, b in zip(recent, recent[1:]))
        if t - pulses[-1] > 1.5 * usual:  # a lost pulse's gap: two periods less two cycles and jitter (> 1.56)
            pulses.append((pulses[-1] + t) / 2)
        pulses.append(t)
    extra = len(pulses) - played
    closest = set(sorted(range(1, len(pulses)), key=lambda i: pulses[i] - pulses[i - 1])[:max(0, extra)])
    return [t for i, t in enumerate(pulses) if i not in closest]


def clock_shift(clock: list[tuple[float, tuple[int, ...]]], heard: list[tuple[float, tuple[int, ...]]]) -> float:
    """Seconds to add to the clock-only monitor's times to put them on the other monitor's: both heard the
    DAW's Start and Stop in the same JACK cycle (each monitor counts from its own first message)."""
    for marker in ((0xFA,), (0xFC,)):  # Start, or Stop where the other monitor lost Start's cycle
        ours = [t for t, m in clock if m == marker]
        theirs = [t for t, m in heard if m == marker]
        if ours and theirs:
            return theirs[0] - ours[0]
    raise AssertionError("neither monitor heard both the DAW's Start and its Stop")


def held(messages) -> set[tuple[int, int]]:
    sounding: set[tuple[int, int]] = set()
    for _, m in messages:
        if m[0] & 0xF0 == 0x90 and m[2] > 0:
            sounding.add((m[0] & 0x0F, m[1]))
        elif m[0] & 0xF0 in (0x80, 0x90):
            sounding.discard((m[0] & 0x0F, m[1]))
        elif m[0] & 0xF0 == 0xB0 and m[1] == 123:
            sounding = {k for k in sounding if k[0] != m[0] & 0x0F}
    return sounding


def _follow_once() -> FollowTake:
    """One take, measured: what it got wrong, the two median note errors (seconds), a line on it."""
    jack = jack_module()
    tag = uuid.uuid4().hex[:6]
    daw, ours = f"daw-{tag}", f"follow-{tag}"
    sender = ClockSender(daw)
    master = MasterClock()
    clock_in = MidiClockIn(daw, master, backend="jack", client_name=f"clock-in-{tag}")
    midi = JackMidiOut(ours, jack_module=jack)
    receiver = MidiDump(f"receiver-{tag}")
    receiver.connect(f"{daw}:{daw}")
    receiver.connect(midi.port.name)
    # The clock alone, too: a monitor that also hears emobridge's Python JACK client loses the cycles that client
    # was late for (16 of 384 pulses in one CI run). One that hears only the DAW's client loses fewer (2 of 384
    # seen): that client is in this process too, beside emobridge's, and is late for a cycle with it now and then.
    clock_only = MidiDump(f"clock-only-{tag}")
    clock_only.connect(f"{daw}:{daw}")
    time.sleep(0.2)  # the graph switches at a later cycle
    player = Player(Composer(parse_mapping(FOLLOW, "follow.yaml"), seed=3), midi, lambda: EmotionState.fixed("happy"),
                    master=master)
    stop = threading.Event()
    playing = threading.Thread(target=player.run, args=(stop,))
    playing.start()
    try:
        sender.play()
        time.sleep(0.5)  # a beat after Stop: emobridge has stopped at the next beat
        messages = receiver.messages()
        reads = [at for monitor in (receiver, clock_only) for _, _, at in list(monitor.got)]
        during = (min(reads, default=time.monotonic()), max(reads, default=time.monotonic()))
    finally:
        stop.set()
        playing.join(timeout=5)
        clock_in.close()
        midi.close()
        time.sleep(0.1)
        everything = receiver.messages()
        clock = clock_only.messages()
        receiver.close()
        clock_only.close()
        sender.close()

    # the clock's beats as every JACK client receives them (each pulse ±1 ms off its grid when sent, then at
    # the start of the next JACK cycle, as python-rtmidi's port delivers it), on the notes' monitor's clock
    shift = clock_shift(clock, messages)
    start = next(i for i, (_, m) in enumerate(clock) if m == (0xFA,))
    received = [t + shift for t, m in clock[start:] if m == (0xF8,)]
    played = len(sender.sent)  # every pulse after Start, counted where the sender sent it
    notes = [t for t, m in messages if m[0] & 0xF0 == 0x90 and m[2] > 0]
    if not played - 4 <= len(received) <= played + 2 or not notes:
        said = f"the clock's monitor received {len(received)} of {played} pulses, {len(notes)} notes came"
        return FollowTake([said], float("inf"), float("inf"), said, during)
    pulses = pulse_train(received, played)
    stopped = next(t for t, m in clock if m == (0xFC,)) + shift
    sixteenths = pulses[::6]  # the clock's own sixteenth-note grid, as it arrived

    # python-rtmidi's JACK input (emobridge's clock-in) can drop a pulse when its reader is late for a cycle, or hand
    # it a copy of one (both seen, on a loaded and on an idle machine: the notes a pulse, 24 ms, off the sixteenths
    # from then on). Counting pulses is what MIDI clock is; a miscount is a known limit (README), so the grid may be
    # off by as many pulses as emobridge's input miscounted, and no more.
    sent = PRE_ROLL_BEATS * 24 + len(sender.sent)  # as the sender counted them
    miscount = clock_in.pulses - sent  # > 0: copies counted (the grid is early); < 0: pulses lost (late)
    faults = [f"emobridge's clock input counted {clock_in.pulses} of {sent} pulses"] if abs(miscount) > 2 else []
    shifts = range(min(0, -miscount), max(0, -miscount) + 1)

    def errors(first_beat: int, end_beat: int) -> list[float]:
        lo, hi = pulses[first_beat * 24] - 0.01, pulses[end_beat * 24] - 0.01 if end_beat * 24 < len(pulses) else stopped
        return [min(abs(t - s - shift * (s2 - s)) for s, s2 in zip(sixteenths, pulses[1::6]) for shift in shifts)
                for t in notes if lo <= t < hi]

    locked_97 = errors(4, BEATS_AT_97)  # after one bar of lock
    after_change = errors(BEATS_AT_97 + 1, BEATS_AT_97 + BEATS_AT_123)  # one beat after the change
    if len(locked_97) < 8 or len(after_change) < 8:
        said = f"{len(locked_97)} notes locked at 97 BPM, {len(after_change)} after the change: 8 each at least"
        return FollowTake(faults + [said], float("inf"), float("inf"), said, during)
    summary = (f"97 BPM median {statistics.median(locked_97) * 1000:.2f} ms (max {max(locked_97) * 1000:.2f}, "
               f"{len(locked_97)} notes); after the change to 123 BPM median {statistics.median(after_change) * 1000:.2f} "
               f"ms (max {max(after_change) * 1000:.2f}, {len(after_change)} notes); {midi.late} notes missed their "
               f"cycle; clock input counted {clock_in.pulses} of {sent}")
    print(f"\nnote-on error to the clock's sixteenths: {summary}")
    # On an idle machine the medians are 0.5-2 ms (the figure issue 14 asks for: run this with -s to see them).
    # Here the bound is what tells following from not following on a busy two-core machine (CI runs another
    # worker beside this one: 2.3 ms seen): a grid that did not follow the clock drifts tens of ms a beat.
    # the first note comes on beat 0, the tempo known before Start (a busy machine's player woke 11.7 ms late
    # once; the next sixteenth is 155 ms away)
    if abs(notes[0] - pulses[0]) >= 0.025:
        faults.append(f"first note {1000 * (notes[0] - pulses[0]):.1f} ms from beat 0")
    # Stop: nothing struck after the next beat, and nothing left sounding
    if late := [t for t in notes if t > stopped + 60 / 123 + 0.01]:
        faults.append(f"{len(late)} notes struck more than a beat after Stop")
    if sounding := held(everything):
        faults.append(f"left sounding after Stop: {sorted(sounding)}")
    return FollowTake(faults, statistics.median(locked_97), statistics.median(after_change), summary, during)


def test_notes_land_on_the_clocks_beats_and_follow_a_tempo_change_within_a_beat(jack_watch):
    # The medians get the best of three takes that JACK left alone, as the clock tests do: in one full run here the
    # other worker held emobridge's JACK output up so that 74 notes missed their cycle (median 9.25 ms at 97 BPM),
    # while a grid that does not follow the clock is off by tens of ms in every take. Every other check holds in
    # each take JACK left alone: a cycle a monitor missed loses its pulses and note-offs, and slips its frame count.
    takes = Takes(jack_watch)
    for take in takes:
        result = _follow_once()
        if not result.faults and result.at_97 < FOLLOW_BOUND and result.after_change < FOLLOW_BOUND:
            return
        trouble = take.failed(result.summary, result.during)
        assert trouble or not result.faults, f"{'; '.join(result.faults)} ({result.summary})"
    raise AssertionError(takes.report(f"no take within {FOLLOW_BOUND * 1000:.0f} ms"))
