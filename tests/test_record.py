"""--record: the session as a Standard MIDI File and a JSON-lines emotion log, safe against a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import mido
import pytest

from emobridge.labels import EMOTIONS
from emobridge.outputs.ports import CONTROL_CHANGE, NOTE_ON, PROGRAM_CHANGE, SONG_POSITION, TIMING_CLOCK, FakePort, Tee
from emobridge.outputs.record import Recorder
from emobridge.state import EmotionState


def read_midi(path: Path) -> list[tuple[float, mido.Message]]:
    """(seconds from the file's start, message) as any reader of the file computes them."""
    now, out = 0.0, []
    for message in mido.MidiFile(path):  # iterating a MidiFile gives delta times in seconds, tempo map applied
        now += message.time
        out.append((now, message))
    return out


def read_states(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def tick_seconds(bpm: float, ticks_per_beat: int = 480) -> float:
    return 60.0 / bpm / ticks_per_beat


def test_notes_ccs_programs_and_states_read_back(tmp_path):
    start = 1000.0
    recorder = Recorder(tmp_path, start=start)
    recorder.program_change(0, 11, start)
    recorder.note_on(0, 60, 100, start + 0.1)
    recorder.control_change(1, 74, 64, start + 0.2503)
    recorder.note_off(0, 60, start + 0.6)
    recorder.note_on(9, 36, 90, start + 1.0001)
    recorder.note_off(9, 36, start + 1.1)
    for i, label in enumerate(("happy", "sad", "angry")):
        recorder.emotion(EmotionState.fixed(label, start + 0.5 * i))
    recorder.close()

    assert recorder.midi_path.name.startswith("session-") and recorder.midi_path.suffix == ".mid"
    assert recorder.jsonl_path.with_suffix(".mid") == recorder.midi_path
    midi = mido.MidiFile(recorder.midi_path)
    assert midi.type == 0 and midi.ticks_per_beat == 480
    sent = [(0.0, "program_change"), (0.1, "note_on"), (0.2503, "control_change"), (0.6, "note_off"),
            (1.0001, "note_on"), (1.1, "note_off")]
    got = [(t, m) for t, m in read_midi(recorder.midi_path) if not m.is_meta]
    assert [m.type for _, m in got] == [kind for _, kind in sent]
    for (t_sent, _), (t_got, _) in zip(sent, got):
        assert abs(t_got - t_sent) <= tick_seconds(120)  # 120 BPM: no tempo was given
    messages = [m for _, m in got]
    assert (messages[0].channel, messages[0].program) == (0, 11)
    assert (messages[1].note, messages[1].velocity) == (60, 100)
    assert (messages[2].channel, messages[2].control, messages[2].value) == (1, 74, 64)
    assert (messages[4].channel, messages[4].note) == (9, 36)

    states = read_states(recorder.jsonl_path)
    assert [s["label"] for s in states] == ["happy", "sad", "angry"]
    assert [s["t"] for s in states] == [0.0, 0.5, 1.0]
    first = states[0]
    assert set(first) >= {"t", "time", "wall", "label", "confidence", "valence", "arousal", "face", "probs"}
    assert list(first["probs"]) == list(EMOTIONS) and first["probs"]["happy"] == 1.0
    assert first["valence"] == pytest.approx(0.81) and first["arousal"] == pytest.approx(0.51)
    assert first["face"] is True and first["time"] == start


def test_tempo_changes_keep_every_event_within_a_tick(tmp_path):
    """Many tempo changes (a glide beat by beat) must not let rounding pile up."""
    start = 50.0
    recorder = Recorder(tmp_path, start=start)
    t, sent = start, []
    for beat in range(400):
        bpm = 60 + (beat * 7.3) % 120  # a new tempo on every beat
        recorder.tempo(bpm, t)
        recorder.note_on(0, 60 + beat % 12, 80, t)
        recorder.note_off(0, 60 + beat % 12, t + 0.3 * 60 / bpm)
        sent.append((t - start, bpm))
        t += 60 / bpm
    recorder.close()
    ons = [(when, m) for when, m in read_midi(recorder.midi_path) if m.type == "note_on"]
    assert len(ons) == len(sent)
    worst = max(abs(when - t_sent) - tick_seconds(bpm) / 2 for (when, _), (t_sent, bpm) in zip(ons, sent))
    assert worst <= 1e-6, f"an event is more than half a tick off ({worst * 1000:.3f} ms over)"
    tempos = [m.tempo for _, m in read_midi(recorder.midi_path) if m.type == "set_tempo"]
    assert tempos[-1] == round(60e6 / sent[-1][1])


def test_two_threads_and_out_of_order_times(tmp_path):
    recorder = Recorder(tmp_path, flush_interval=0.05)
    base = recorder.start

    def notes():
        for i in range(500):
            recorder.note_on(0, 40 + i % 40, 90, base + i * 0.002)
            recorder.note_off(0, 40 + i % 40, base + i * 0.002 + 0.001)

    def perception():
        for i in range(500):
            recorder.control_change(1, 1, i % 128, base + i * 0.002 + 0.0005)
            recorder.emotion(EmotionState.fixed(EMOTIONS[i % 7], base + i * 0.002))

    threads = [threading.Thread(target=notes), threading.Thread(target=perception)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.close()
    got = read_midi(recorder.midi_path)
    assert sum(m.type == "note_on" for _, m in got) == 500
    assert sum(m.type == "note_off" for _, m in got) == 500
    assert sum(m.type == "control_change" for _, m in got) == 500
    times = [when for when, _ in got]
    assert times == sorted(times)
    assert len(read_states(recorder.jsonl_path)) == 500


def test_close_releases_notes_still_sounding(tmp_path):
    recorder = Recorder(tmp_path, start=0.0)
    recorder.note_on(2, 48, 70, 0.5)
    recorder.note_on(2, 48, 70, 0.7)  # retriggered: two note-ons, two note-offs
    recorder.note_on(0, 72, 70, 0.8)
    recorder.note_off(0, 72, 0.9)
    recorder.close(t=2.0)
    offs = [(when, m.channel, m.note) for when, m in read_midi(recorder.midi_path) if m.type == "note_off"]
    assert offs.count((pytest.approx(2.0, abs=0.002), 2, 48)) == 2
    assert len(offs) == 3
    recorder.close()  # twice is harmless
    recorder.note_on(0, 1, 1, 3.0)  # after close: ignored, no error


def test_the_recorder_listens_to_a_tee_and_gets_what_the_port_sent(tmp_path):
    """--record: the daemon's port is Tee(MidiOut, recorder); retriggers and the closing panic reach the file."""
    clock = iter([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    recorder = Recorder(tmp_path, start=0.0)
    port = FakePort()
    tee = Tee(port, recorder, now=lambda: next(clock))
    tee.note_on(0, 60, 100)       # 0.1
    tee.send([TIMING_CLOCK])      # not music: not recorded, takes no time
    tee.note_on(0, 60, 90)        # 0.2: the retrigger's note-off, 0.3: the note-on
    tee.control_change(1, 7, 99)  # 0.4
    tee.close()                   # 0.5: note-off, then sustain off and all-notes-off on channel 0
    recorder.close()
    got = [(round(when, 3), m.type, getattr(m, "note", getattr(m, "control", None)))
           for when, m in read_midi(recorder.midi_path) if not m.is_meta]
    assert got == [(0.1, "note_on", 60), (0.2, "note_off", 60), (0.3, "note_on", 60), (0.4, "control_change", 7),
                   (0.5, "note_off", 60), (0.6, "control_change", 64), (0.7, "control_change", 123)]
    # the clock pulse and the closing repeat of the note-off went to the port only
    assert port.closed and len(port.messages()) == len(got) + 2


def test_raw_messages_that_no_file_could_hold_are_left_out(tmp_path):
    recorder = Recorder(tmp_path, start=0.0)
    recorder.message([NOTE_ON, 60, 100], 0.1)
    recorder.message([NOTE_ON, 60, 0], 0.2)  # velocity 0: a note-off
    recorder.message([PROGRAM_CHANGE | 2, 11], 0.3)  # any other channel message as it is
    for bad in ([], [60, 100], [NOTE_ON, 61], [CONTROL_CHANGE, 200, 1], [SONG_POSITION, 0, 0], [TIMING_CLOCK]):
        recorder.message(bad, 0.4)
    recorder.close()
    got = [m.type for _, m in read_midi(recorder.midi_path) if not m.is_meta]
    assert got == ["note_on", "note_off", "program_change"]


def test_two_sessions_in_the_same_second_get_their_own_files(tmp_path):
    a, b = Recorder(tmp_path), Recorder(tmp_path)
    a.close(), b.close()
    assert a.midi_path != b.midi_path and a.jsonl_path != b.jsonl_path
    assert len(list(tmp_path.iterdir())) == 4


def test_an_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot record into"):
        Recorder(blocker / "sub")


CHILD = textwrap.dedent("""
    import sys, time
    from emobridge.outputs.record import Recorder
    from emobridge.state import EmotionState
    recorder = Recorder(sys.argv[1])
    print(recorder.start, flush=True)
    i = 0
    while True:  # never closed: killed with SIGKILL
        now = time.monotonic()
        recorder.note_on(0, 60 + i % 24, 100, now)
        recorder.note_off(0, 60 + i % 24, now + 0.01)
        recorder.emotion(EmotionState.fixed("happy", now))
        i += 1
        time.sleep(0.02)
""")


def test_a_killed_recorder_has_everything_older_than_a_second_on_disk(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        start = float(child.stdout.readline())
        time.sleep(3.0)
        killed_at = time.monotonic()  # CLOCK_MONOTONIC is one clock for every process on the machine
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
    (midi_path,) = tmp_path.glob("session-*.mid")
    (jsonl_path,) = tmp_path.glob("session-*.jsonl")
    ons = [when for when, m in read_midi(midi_path) if m.type == "note_on"]  # a whole, readable file
    assert ons and start + ons[-1] >= killed_at - 1.0, f"MIDI on disk ends {killed_at - start - ons[-1]:.2f} s before the kill"
    assert len(ons) >= 2.0 / 0.025
    states = read_states(jsonl_path)  # every line whole
    assert states[-1]["time"] >= killed_at - 1.0, "the emotion log lost more than a second"
