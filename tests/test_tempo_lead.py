"""tempo: lead, done right: a glide's tempo reaches the DAW beat by beat, and a resume continues the song.

The player runs on an offline clock with a fake port (virtual time: exact, and the same on every run);
the OSC side is checked at a real python-osc UDP server.
"""

from __future__ import annotations

import threading
import time

import pytest
from osc_listener import OscListener

from emobridge.live.clock import OfflineClock
from emobridge.live.fanout import BarStarted, Fanout, TempoChanged
from emobridge.live.player import Player, song_position
from emobridge.mapping import parse_mapping
from emobridge.mapping.osc_targets import OscTargetSpec
from emobridge.music.composer import Composer
from emobridge.outputs.osc import OscSender
from emobridge.outputs.ports import CONTINUE, SONG_POSITION, START, STOP, TIMING_CLOCK, FakePort
from emobridge.state import EmotionState

GLIDE = """
humanize: {timing_ms: 0, velocity: 0}
transition: {tempo_glide_beats: 4}
emotions:
  sad: {tempo: [80, 80]}
  happy: {tempo: [140, 140]}
"""


def run_player(seconds: float, state, at: dict[float, object] | None = None, midi_clock: bool = True):
    """The player on an offline clock for *seconds* of virtual time; *at*: {second: action(player)}."""
    clock = OfflineClock()
    port = FakePort(now=clock)
    bars, tempos = [], []
    player = Player(Composer(parse_mapping(GLIDE, "glide.yaml"), seed=1), port, lambda: state(clock() - start),
                    on_bar=lambda bar: bars.append((clock(), bar)), clock=clock, midi_clock=midi_clock,
                    on_tempo=lambda tempo: tempos.append((clock(), tempo)))
    stop = threading.Event()
    start = clock()
    clock.enter()  # the player's thread
    clock.enter()  # this script
    thread = threading.Thread(target=lambda: (player.run(stop), clock.leave()), daemon=True)
    thread.start()
    try:
        for second, action in sorted((at or {}).items()):
            clock.wait_until(start + second, stop)
            action(player)
        clock.wait_until(start + seconds, stop)
    finally:
        stop.set()
        clock.leave()
        thread.join(timeout=10)
    assert not thread.is_alive()
    return start, port, bars, tempos


def sad_then_happy(after: float):
    return lambda t: EmotionState.fixed("sad" if t < after else "happy")


def beat_times(port: FakePort) -> list[float]:
    """Clock times of the beats, from the MIDI clock (every 24th pulse of a timeline)."""
    pulses = [s.time for s in port.snapshot() if s.message == (TIMING_CLOCK,)]
    return pulses[::24]


def test_a_glide_is_told_beat_by_beat_at_the_tempo_each_beat_plays():
    start, port, bars, tempos = run_player(14.0, sad_then_happy(5.0))
    glide = [tempo for _, tempo in tempos]
    assert glide == [pytest.approx(t) for t in (95.0, 110.0, 125.0)] or glide == [
        pytest.approx(t) for t in (110.0, 125.0, 140.0)], glide  # the glide's steps inside a bar
    beats = beat_times(port)
    for told_at, tempo in tempos:
        # told at the beat it starts, and that beat lasts exactly as long as the tempo says
        index = min(range(len(beats)), key=lambda i: abs(beats[i] - told_at))
        assert beats[index] == pytest.approx(told_at, abs=1e-9)
        assert beats[index + 1] - beats[index] == pytest.approx(60 / tempo, rel=1e-6)
    # the bar line carries the tempo its first beat plays, not the target the glide heads for
    for at, bar in bars:
        index = min(range(len(beats)), key=lambda i: abs(beats[i] - at))
        assert beats[index + 1] - beats[index] == pytest.approx(60 / bar.tempo_at(0), rel=1e-6)


def test_a_resume_sends_song_position_and_continue_from_the_next_bar_line():
    pause, resume = (lambda p: setattr(p, "paused", True)), (lambda p: setattr(p, "paused", False))
    # sad at 80 BPM: a 4/4 bar lasts 3 s; pausing at 4.0 s stops during bar 2 (song beats 4-7)
    start, port, bars, _ = run_player(12.0, lambda t: EmotionState.fixed("sad"), at={4.0: pause, 6.0: resume})
    system = [s.message for s in port.snapshot() if s.message[0] in (SONG_POSITION, START, CONTINUE, STOP)]
    assert system[:2] == [(SONG_POSITION, 0, 0), (START,)]
    # Stop at the pause; then bar 3's line (song beat 8 = sixteenth 32), and Continue, not Start
    assert system[2:5] == [(STOP,), (SONG_POSITION, 32, 0), (CONTINUE,)]
    assert (START,) not in system[2:]


def test_song_position_counts_sixteenths_in_fourteen_bits():
    assert song_position(0) == [SONG_POSITION, 0, 0]
    assert song_position(8) == [SONG_POSITION, 32, 0]
    assert song_position(100) == [SONG_POSITION, 400 & 0x7F, 400 >> 7]
    assert song_position(4096) == [SONG_POSITION, 0, 0]  # 16,384 sixteenths wrap


def test_every_glide_step_reaches_osc_abletonosc_and_reaper_at_a_real_udp_server():
    table, ableton, reaper = OscListener(), OscListener(), OscListener()
    try:
        osc = OscSender([OscTargetSpec("127.0.0.1", table.port), OscTargetSpec("127.0.0.1", ableton.port, "abletonosc"),
                         OscTargetSpec("127.0.0.1", reaper.port, "reaper")])
        fanout = Fanout(osc)
        bar = Composer(parse_mapping(GLIDE, "glide.yaml"), seed=1).next_bar(EmotionState.fixed("sad"), {})
        fanout.bar(BarStarted(bar, 0.0, EmotionState.fixed("sad")))
        for tempo in (95.0, 110.0, 125.0, 140.0):
            fanout.tempo(TempoChanged(tempo, 1.0))
        fanout.drain()
        expected = [(80.0,), (95.0,), (110.0,), (125.0,), (140.0,)]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and min(len(table.received("/emobridge/tempo")),
                                                  len(ableton.received("/live/song/set/tempo")),
                                                  len(reaper.received("/tempo/raw"))) < 5:
            time.sleep(0.01)
        assert table.received("/emobridge/tempo") == expected
        assert ableton.received("/live/song/set/tempo") == expected
        assert reaper.received("/tempo/raw") == expected
        osc.close()
    finally:
        for listener in (table, ableton, reaper):
            listener.close()


def test_a_forced_emotion_is_on_osc_and_marked_in_the_recordings_log(tmp_path):
    import json

    from emobridge.outputs.record import Recorder

    listener = OscListener()
    recorder = Recorder(tmp_path)
    try:
        osc = OscSender([OscTargetSpec("127.0.0.1", listener.port)])
        fanout = Fanout(osc, recorder=recorder)
        face = EmotionState.fixed("happy", recorder.start + 1.0)
        fanout.emotion(face)
        fanout.forced("sad")
        fanout.emotion(EmotionState.fixed("happy", recorder.start + 2.0))
        fanout.forced(None)
        fanout.emotion(EmotionState.fixed("happy", recorder.start + 3.0))
        fanout.drain()
        assert listener.wait_for("/emobridge/forced") and time.sleep(0.2) is None
        assert listener.received("/emobridge/forced") == [("sad",), ("",)]
        osc.close()
    finally:
        listener.close()
        recorder.close()
    lines = [json.loads(line) for line in recorder.jsonl_path.read_text().splitlines()]
    assert [line.get("forced") for line in lines] == [None, "sad", None]
    assert [line["label"] for line in lines] == ["happy"] * 3  # the face's own reading stays what it was
