"""tempo: follow on a real JACK server: a python-rtmidi clock sender plays the DAW, emobridge plays on its beats.

The sender runs at 97 BPM with ±1 ms of jitter on every pulse, then changes to 123 BPM. emobridge reads the
clock with python-rtmidi (--clock-in) and plays through its JACK-native port (frame-exact); one JACK-Client
input hears both the clock and the notes and keeps the frame each arrives at, so both are timed on JACK's
frame clock, to the sample. (python-rtmidi's JACK ports move MIDI at the start of a cycle: measured through
them, a note a little late for its cycle would count a whole cycle off.)
"""

from __future__ import annotations

import itertools
import os
import random
import re
import shutil
import statistics
import subprocess
import threading
import time
import uuid

import pytest
import rtmidi

from emobridge.live.clock import MasterClock, wait_until
from emobridge.live.player import Player
from emobridge.mapping import parse_mapping
from emobridge.music.composer import Composer
from emobridge.outputs.clock_in import MidiClockIn
from emobridge.outputs.jack_out import JackMidiOut
from emobridge.state import EmotionState
from jack import jack_command, jack_ports, jack_rate
from test_sound import jack_module

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


class FrameReceiver:
    """``jack_midi_dump``, JACK's own C MIDI monitor, on an input port: (seconds on JACK's frame clock, bytes) of
    everything that arrives. Not a Python JACK client, whose process callback waits for the GIL: a JACK-Client
    receiver lost 4 of 384 pulses in one CI run and 1 of 432 in one of six runs on an idle machine, where
    jack_midi_dump and emobridge's clock input had every one."""

    def __init__(self, name: str):
        if shutil.which("jack_midi_dump") is None:  # a JACK without its example clients
            message = "the follow test hears JACK with jack_midi_dump: apt-get install jackd2 (CI has it)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        self.rate = jack_rate()
        self.port = f"{name}:input"
        self.got: list[tuple[int, tuple[int, ...]]] = []
        env = dict(os.environ, JACK_NO_START_SERVER="1")
        # -a: each event's frame, counted from the monitor's start; stdbuf: a line as each event comes
        self.process = subprocess.Popen(["stdbuf", "-oL", "jack_midi_dump", "-a", name], stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True, env=env)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        deadline = time.monotonic() + 10
        while self.port not in jack_ports():
            assert time.monotonic() < deadline and self.process.poll() is None, "jack_midi_dump did not start"
            time.sleep(0.05)

    def _read(self) -> None:
        for line in self.process.stdout:  # "  57856: 90 3c 64 note on  (channel  0): pitch  60, velocity 100"
            frame, _, text = line.partition(":")
            data = list(itertools.takewhile(lambda word: re.fullmatch("[0-9a-f]{2}", word), text.split()))
            if frame.strip().isdigit() and data:
                self.got.append((int(frame), tuple(int(b, 16) for b in data)))

    def connect(self, source: str) -> None:
        assert jack_command("jack_connect", source, self.port), f"could not connect {source} to {self.port}"

    def messages(self) -> list[tuple[float, tuple[int, ...]]]:
        """(seconds on JACK's frame clock, bytes), from the first message on."""
        got = list(self.got)
        first = got[0][0] if got else 0
        return [((frame - first) / self.rate, message) for frame, message in got]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.reader.join(timeout=5)


def pulse_train(received: list[float], played: int) -> list[float]:
    """The *played* pulses as the sender played them, rebuilt from the *received* times.

    The monitor hears the clock and emobridge's notes on one port, and JACK2 now and then loses a cycle's events
    on such a port (emobridge's output is a Python client, late for a cycle on a busy machine): beside a
    monitor on the clock alone, which had all 432 pulses, one hearing both had 430. A lost pulse leaves a
    gap of two, filled here at its middle. Then as many pulses as were received too many (a copy comes in
    its original's cycle) are dropped where two came closest, and no more: two pulses that a late sender
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


def test_notes_land_on_the_clocks_beats_and_follow_a_tempo_change_within_a_beat(jack_server):
    jack = jack_module()
    tag = uuid.uuid4().hex[:6]
    daw, ours = f"daw-{tag}", f"follow-{tag}"
    sender = ClockSender(daw)
    master = MasterClock()
    clock_in = MidiClockIn(daw, master, backend="jack", client_name=f"clock-in-{tag}")
    midi = JackMidiOut(ours, jack_module=jack)
    receiver = FrameReceiver(f"receiver-{tag}")
    receiver.connect(f"{daw}:{daw}")
    receiver.connect(midi.port.name)
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
    finally:
        stop.set()
        playing.join(timeout=5)
        clock_in.close()
        midi.close()
        time.sleep(0.1)
        everything = receiver.messages()
        receiver.close()
        sender.close()

    start = next(i for i, (_, m) in enumerate(messages) if m == (0xFA,))
    # the clock's beats as every JACK client receives them (each pulse ±1 ms off its grid when sent, then at
    # the start of the next JACK cycle, as python-rtmidi's port delivers it)
    received = [t for t, m in messages[start:] if m == (0xF8,)]
    played = len(sender.sent)  # every pulse after Start, counted where the sender sent it
    assert played - 4 <= len(received) <= played + 2, f"received {len(received)} of {played} pulses"
    pulses = pulse_train(received, played)
    stopped = next(t for t, m in messages if m == (0xFC,))
    sixteenths = pulses[::6]  # the clock's own sixteenth-note grid, as it arrived
    notes = [t for t, m in messages if m[0] & 0xF0 == 0x90 and m[2] > 0]
    assert notes, "emobridge played nothing"

    # python-rtmidi's JACK input (emobridge's clock-in) can drop a pulse when its reader is late for a cycle, or hand
    # it a copy of one (both seen, on a loaded and on an idle machine: the notes a pulse, 24 ms, off the sixteenths
    # from then on). Counting pulses is what MIDI clock is; a miscount is a known limit (README), so the grid may be
    # off by as many pulses as emobridge's input miscounted, and no more.
    sent = PRE_ROLL_BEATS * 24 + len(sender.sent)  # as the sender counted them
    miscount = clock_in.pulses - sent  # > 0: copies counted (the grid is early); < 0: pulses lost (late)
    assert abs(miscount) <= 2, f"emobridge's clock input counted {clock_in.pulses} of {sent} pulses"
    shifts = range(min(0, -miscount), max(0, -miscount) + 1)

    def errors(first_beat: int, end_beat: int) -> list[float]:
        lo, hi = pulses[first_beat * 24] - 0.01, pulses[end_beat * 24] - 0.01 if end_beat * 24 < len(pulses) else stopped
        return [min(abs(t - s - shift * (s2 - s)) for s, s2 in zip(sixteenths, pulses[1::6]) for shift in shifts)
                for t in notes if lo <= t < hi]

    locked_97 = errors(4, BEATS_AT_97)  # after one bar of lock
    after_change = errors(BEATS_AT_97 + 1, BEATS_AT_97 + BEATS_AT_123)  # one beat after the change
    print(f"\nnote-on error to the clock's sixteenths: 97 BPM median {statistics.median(locked_97) * 1000:.2f} ms "
          f"(max {max(locked_97) * 1000:.2f}, {len(locked_97)} notes); after the change to 123 BPM median "
          f"{statistics.median(after_change) * 1000:.2f} ms (max {max(after_change) * 1000:.2f}, "
          f"{len(after_change)} notes); {midi.late} notes missed their cycle; clock input counted {clock_in.pulses} of {sent}")
    # On an idle machine the medians are 0.5-2 ms (the figure issue 14 asks for: run this with -s to see them).
    # Here the bound is what tells following from not following on a busy two-core machine (CI runs another
    # worker beside this one: 2.3 ms seen): a grid that did not follow the clock drifts tens of ms a beat.
    assert len(locked_97) >= 8 and len(after_change) >= 8
    assert statistics.median(locked_97) < 0.005, f"counted {clock_in.pulses} of {sent} pulses"
    assert statistics.median(after_change) < 0.005
    # the first note comes on beat 0, the tempo known before Start (a busy machine's player woke 11.7 ms late
    # once; the next sixteenth is 155 ms away)
    assert abs(notes[0] - pulses[0]) < 0.025, f"first note {1000 * (notes[0] - pulses[0]):.1f} ms from beat 0"
    # Stop: nothing struck after the next beat, and nothing left sounding
    assert [t for t in notes if t > stopped + 60 / 123 + 0.01] == []
    assert held(everything) == set()
