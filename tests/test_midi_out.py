"""MidiOut against a real JACK server and a real JACK MIDI input client."""

import time
import uuid

import pytest

from emobridge.outputs.midi import MidiOut, compiled_backends
from emobridge.outputs.ports import ALL_NOTES_OFF, CONTROL_CHANGE, NOTE_OFF, NOTE_ON, SUSTAIN
from emobridge.errors import MidiPortError
from jack_rig import CONNECT_SETTLE, JackReceiver

pytestmark = pytest.mark.jack


@pytest.fixture
def port(jack_server):
    name = f"emo-{uuid.uuid4().hex[:6]}"
    out = MidiOut(name, backend="jack")
    receiver = JackReceiver(name)
    time.sleep(0.1)
    yield out, receiver
    receiver.close()
    out.close()


def messages(receiver, n, timeout=2.0):
    deadline = time.monotonic() + timeout
    while len(receiver.snapshot()) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return [m.message for m in receiver.snapshot()]


def test_notes_arrive_at_a_jack_input(port):
    out, receiver = port
    out.note_on(0, 60, 100)
    out.note_off(0, 60)
    assert messages(receiver, 2) == [(NOTE_ON, 60, 100), (NOTE_OFF, 60, 0)]


def test_repeated_pitch_is_retriggered_and_released_once(port):
    out, receiver = port
    out.note_on(1, 64, 90)
    out.note_on(1, 64, 80)  # same key again while sounding
    out.note_off(1, 64)     # the first note's end: the second still sounds
    out.note_off(1, 64)
    assert messages(receiver, 4) == [(NOTE_ON | 1, 64, 90), (NOTE_OFF | 1, 64, 0), (NOTE_ON | 1, 64, 80), (NOTE_OFF | 1, 64, 0)]


def test_panic_releases_every_sounding_note_and_clears_channels(port):
    out, receiver = port
    out.note_on(0, 60, 100)
    out.note_on(2, 40, 100)
    out.panic({0, 2, 9})
    out.note_off(0, 60)  # the player's own note-off after the panic: already released, nothing is sent
    got = [m.message for m in receiver.settle()]
    assert len(got) == 2 + 2 + 6
    assert set(got[2:4]) == {(NOTE_OFF, 60, 0), (NOTE_OFF | 2, 40, 0)}
    for channel in (0, 2, 9):
        assert (CONTROL_CHANGE | channel, ALL_NOTES_OFF, 0) in got
        assert (CONTROL_CHANGE | channel, SUSTAIN, 0) in got


def test_connect_to_an_existing_port(jack_server):
    name = f"loopback-in-{uuid.uuid4().hex[:6]}"  # a name of its own: another run's port must not match
    receiver = JackReceiver(None, virtual=name)
    out = MidiOut(backend="jack", connect=name)
    # A new connection takes effect a JACK cycle or more after jack_connect returns, and on a busy machine more than
    # CONNECT_SETTLE later: what is sent before then is lost, as JACK does. So send until one arrives.
    for _ in range(20):
        time.sleep(CONNECT_SETTLE)
        out.control_change(3, 74, 99)
        if messages(receiver, 1, timeout=0.3):
            break
    got = messages(receiver, 1)
    assert got and set(got) == {(CONTROL_CHANGE | 3, 74, 99)}
    out.close()
    receiver.close()


def test_unknown_port_lists_what_is_available(jack_server):
    receiver = JackReceiver(None, virtual="listed-port")
    with pytest.raises(MidiPortError) as error:
        MidiOut(backend="jack", connect="no-such-port")
    assert "no-such-port" in str(error.value) and "listed-port" in str(error.value)
    assert "\n" not in str(error.value)
    receiver.close()


def test_unknown_backend_lists_the_backends():
    with pytest.raises(MidiPortError) as error:
        MidiOut(backend="beos")
    message = str(error.value)
    assert "beos" in message and all(name in message for name in compiled_backends())


def test_a_second_instance_on_the_same_port_name_is_refused(jack_server):
    name = f"dup-{uuid.uuid4().hex[:6]}"
    first = MidiOut(name, backend="jack")
    with pytest.raises(MidiPortError) as error:
        MidiOut(name, backend="jack")
    assert name in str(error.value) and "already" in str(error.value) and "--midi-port" in str(error.value)
    first.close()
    MidiOut(name, backend="jack").close()  # free again once the first is gone


def test_a_port_name_too_long_for_jack_is_its_own_error_before_any_backend_is_asked(monkeypatch):
    import rtmidi

    def asked(*args, **kwargs):
        raise AssertionError("a backend was asked")

    monkeypatch.setattr(rtmidi, "MidiOut", asked)
    monkeypatch.setattr(rtmidi, "MidiIn", asked)
    for name, size in (("x" * 1000, 1000), ("é" * 32, 64)):  # the limit is in bytes: é takes two
        with pytest.raises(MidiPortError) as error:
            MidiOut(name, backend="jack")
        message = str(error.value)
        assert f"{size} bytes" in message and "63" in message and "JACK" in message and "--midi-port" in message
        assert "not running" not in message and "\n" not in message


def test_the_longest_name_jack_takes_opens(jack_server):
    name = "e" * 57 + uuid.uuid4().hex[:6]  # 63 bytes
    out = MidiOut(name, backend="jack")
    receiver = JackReceiver(name)
    out.note_on(0, 60, 100)
    assert messages(receiver, 1) == [(NOTE_ON, 60, 100)]
    out.close()
    receiver.close()


def test_an_open_port_is_healthy_and_says_what_it_is(port):
    out, _ = port
    health = out.health()
    assert health.ok and health.changes == 0 and health.dropped == 0 and out.port_name in health.text
