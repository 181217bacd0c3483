"""tempo: follow on a real JACK server: a python-rtmidi clock sender plays the DAW, emobridge plays on its beats.

One JACK input client hears both the sender's clock and emobridge's notes, so both are timed on the same
JACK frame clock. The sender runs at 97 BPM with ±1 ms of jitter on every pulse, then changes to 123 BPM.
"""

from __future__ import annotations

import random
import statistics
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
from emobridge.outputs.midi import MidiOut
from emobridge.state import EmotionState
from jack import JackReceiver, jack_command, stuck_notes

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
        self.beat_times: list[float] = []  # monotonic times the sender meant each beat (its 24th pulses) for
        self.change_beat = BEATS_AT_97

    def play(self) -> None:
        t = time.monotonic() + 0.05
        period = 60 / 97 / 24
        for _ in range(PRE_ROLL_BEATS * 24):
            t = self._pulse(t, period)
        self.port.send_message([0xFA])  # Start: the next pulse is beat 0
        for beat in range(BEATS_AT_97 + BEATS_AT_123):
            period = 60 / (97 if beat < self.change_beat else 123) / 24
            self.beat_times.append(t)
            for _ in range(24):
                t = self._pulse(t, period)
        self.port.send_message([0xFC])  # Stop

    def _pulse(self, t: float, period: float) -> float:
        wait_until(t + self.rng.uniform(-JITTER, JITTER), self.stop)
        self.port.send_message([0xF8])
        return t + period

    def close(self) -> None:
        self.port.close_port()
        self.port.delete()


def test_notes_land_on_the_clocks_beats_and_follow_a_tempo_change_within_a_beat(jack_server):
    tag = uuid.uuid4().hex[:6]
    daw, ours = f"daw-{tag}", f"follow-{tag}"
    sender = ClockSender(daw)
    master = MasterClock()
    clock_in = MidiClockIn(daw, master, backend="jack", client_name=f"clock-in-{tag}")
    midi = MidiOut(ours, backend="jack")
    receiver = JackReceiver(ours, client_name=f"receiver-{tag}")
    assert jack_command("jack_connect", f"{daw}:{daw}", f"receiver-{tag}:in")
    time.sleep(0.2)  # the graph switches at a later cycle
    player = Player(Composer(parse_mapping(FOLLOW, "follow.yaml"), seed=3), midi, lambda: EmotionState.fixed("happy"),
                    master=master)
    stop = threading.Event()
    playing = threading.Thread(target=player.run, args=(stop,))
    playing.start()
    try:
        sender.play()
        time.sleep(0.5)  # a beat after Stop: emobridge has stopped at the next beat
        messages = receiver.settle()
    finally:
        stop.set()
        playing.join(timeout=5)
        clock_in.close()
        receiver.close()
        midi.close()
        sender.close()

    start = next(i for i, m in enumerate(messages) if m.message == (0xFA,))
    pulses = [m.jack_time for m in messages[start:] if m.message == (0xF8,)]
    assert len(pulses) == (BEATS_AT_97 + BEATS_AT_123) * 24
    stopped = next(m.jack_time for m in messages if m.message == (0xFC,))
    sixteenths = pulses[::6]  # the clock's own sixteenth-note grid, as it arrived
    notes = [m.jack_time for m in messages if m.is_note_on]
    assert notes, "emobridge played nothing"

    def errors(first_beat: int, end_beat: int) -> list[float]:
        lo, hi = pulses[first_beat * 24] - 0.01, pulses[end_beat * 24] - 0.01 if end_beat * 24 < len(pulses) else stopped
        return [min(abs(t - s) for s in sixteenths) for t in notes if lo <= t < hi]

    locked_97 = errors(4, BEATS_AT_97)  # after one bar of lock
    after_change = errors(BEATS_AT_97 + 1, BEATS_AT_97 + BEATS_AT_123)  # one beat after the change
    print(f"\nnote-on error to the clock's sixteenths: 97 BPM median {statistics.median(locked_97) * 1000:.2f} ms "
          f"(max {max(locked_97) * 1000:.2f}, {len(locked_97)} notes); after the change to 123 BPM median "
          f"{statistics.median(after_change) * 1000:.2f} ms (max {max(after_change) * 1000:.2f}, "
          f"{len(after_change)} notes)")
    assert len(locked_97) >= 8 and len(after_change) >= 8
    assert statistics.median(locked_97) < 0.002
    assert statistics.median(after_change) < 0.002
    # the first note comes on beat 0: the tempo was known before Start
    assert abs(notes[0] - pulses[0]) < 0.005, f"first note {1000 * (notes[0] - pulses[0]):.1f} ms from beat 0"
    # Stop: nothing struck after the next beat, and nothing left sounding
    period_123 = 60 / 123
    assert [t for t in notes if t > stopped + period_123 + 0.01] == []
    assert stuck_notes(messages) == {}
