"""emobridge learn's sweep: through a real JACK MIDI port, and paced and checked on a fake one."""

from __future__ import annotations

import time

import pytest
from jack_rig import DumpReceiver, Received, Takes

from emobridge.errors import LearnError
from emobridge.tools.learn import cc_note, sweep, sweep_values
from emobridge.outputs.midi import MidiOut
from emobridge.outputs.ports import CONTROL_CHANGE, FakePort


def sweep_take() -> tuple[int, float, list[Received]]:
    """One sweep on a real JACK port, heard by a monitor: what was sent, how long it took, what arrived."""
    midi = MidiOut("emobridge-learn-test", backend="jack")
    receiver = DumpReceiver("emobridge-learn-test")
    try:
        started = time.monotonic()
        sent = sweep(midi, cc=21, channel=16, seconds=0.5, repeats=2)
        took = time.monotonic() - started
        assert receiver.wait_for(lambda m: False, 0.3) is False  # let the last messages arrive
        midi.close()  # closing after a sweep adds nothing: no notes were played
        time.sleep(0.2)
        return sent, took, receiver.snapshot()
    finally:
        receiver.close()


def test_sweep_sends_one_cc_rising_then_falling(jack_watch):
    takes = Takes(jack_watch, clean=1)  # every CC must arrive in a take where JACK lost no cycle
    for take in takes:
        sent, took, messages = sweep_take()
        assert sent == len(sweep_values(2)) == 509
        assert 0.9 <= took < 5.0  # two sweeps of 0.5 s, paced
        assert all(m.message[:2] == (CONTROL_CHANGE | 15, 21) for m in messages), {m.message[:2] for m in messages}
        values = [m.message[2] for m in messages]
        if values == sweep_values(2):
            break
        take.failed(f"{len(values)} of 509 CCs arrived", (messages[0].time, messages[-1].time) if messages else None)
    else:
        raise AssertionError(takes.report("the sweep did not arrive whole"))
    top = values.index(127)
    assert values[:top + 1] == sorted(values[:top + 1]) and values[0] == 0
    assert values[top:255] == sorted(values[top:255], reverse=True) and values[254] == 0


def test_sweep_values_shape():
    one = sweep_values(1)
    assert one[0] == 0 and one[127] == 127 and one[-1] == 0 and len(one) == 255
    assert all(abs(a - b) == 1 for a, b in zip(one, one[1:]))
    assert sweep_values(3)[255:] == sweep_values(1)[1:] * 2


def test_sweep_paces_with_the_given_sleep():
    clock = [0.0]  # seconds: the fake sleep moves the port's clock

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    midi = FakePort(now=lambda: clock[0])
    assert sweep(midi, 1, 1, seconds=2.54, repeats=1, sleep=sleep) == 255
    sent = midi.snapshot()
    assert [s.message for s in sent] == [(CONTROL_CHANGE, 1, v) for v in sweep_values(1)]
    assert [s.time for s in sent] == pytest.approx([i * 2.54 / 254 for i in range(255)])  # one step per move


@pytest.mark.parametrize("cc, channel, kwargs, message", [
    (120, 1, {}, "CC 120 is a channel mode message"),
    (127, 1, {}, "CC 127 is a channel mode message"),
    (128, 1, {}, "CC number 128 is out of range: use 0 to 119"),
    (-1, 1, {}, "CC number -1 is out of range"),
    (1.5, 1, {}, "is not a whole number"),
    (True, 1, {}, "is not a whole number"),
    (20, 0, {}, "MIDI channel 0 is out of range: use 1 to 16"),
    (20, 17, {}, "MIDI channel 17 is out of range"),
    (20, 1, {"seconds": 0}, "sweep duration 0 is out of range"),
    (20, 1, {"repeats": 0}, "repeat count 0 is out of range"),
])
def test_sweep_refuses_bad_arguments_before_sending(cc, channel, kwargs, message):
    midi = FakePort()
    with pytest.raises(LearnError, match=message) as caught:
        sweep(midi, cc, channel, sleep=lambda _s: None, **kwargs)
    assert "\n" not in str(caught.value)
    assert midi.messages() == []


def test_cc_note():
    assert "sustain" in cc_note(64)
    assert cc_note(20) is None
