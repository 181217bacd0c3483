"""The daemon's orchestration, in-process on fakes (frame list, FakePort, OfflineClock): milliseconds a test.

Pause and resume, a forced emotion, hot reload, a lost source, several faces, the no-face policies and
an output that blocks. The same behaviour on real parts (the `emobridge` command, JACK, UDP) is
proven by the integration tests in test_live.py, test_camera_cases.py and test_faults.py.
"""

from __future__ import annotations

import functools
import re
import threading
import time

import numpy as np
import pytest

from emobridge.live.clock import SYSTEM_CLOCK
from emobridge.outputs.ports import ALL_NOTES_OFF, CONTROL_CHANGE, PROGRAM_CHANGE
from face_clips import COLLINS_HAPPY, HOPPER_NEUTRAL, Placed, face_patch, frame_with
from show import grid_mapping, offline_show, play


@functools.lru_cache(maxsize=None)
def patch(second: float):
    return face_patch(second)


def happy_frames() -> list[np.ndarray]:
    return [frame_with([Placed(patch(COLLINS_HAPPY), 240, 120)])]


def two_face_frames() -> list[np.ndarray]:
    return [frame_with([Placed(patch(COLLINS_HAPPY), 20, 120), Placed(patch(HOPPER_NEUTRAL), 380, 120)])]


def empty_frames() -> list[np.ndarray]:
    return [frame_with([])]


def write(tmp_path, text: str, name: str = "mapping.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def fixed_tempo(bpm: int) -> str:
    from emobridge.labels import EMOTIONS

    return grid_mapping("emotions:\n" + "".join(f"  {e}: {{tempo: [{bpm}, {bpm}]}}\n" for e in EMOTIONS))


def test_notes_fall_on_the_bar_grid_and_every_note_is_released(tmp_path):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    start = play(show, 12.0)
    ons = show.note_ons()
    assert len(ons) > 20
    # 120 BPM: a beat every 0.5 s; the grid's finest step is a sixteenth (0.125 s), exactly, on this clock.
    offsets = [(s.time - start) / 0.125 for s in ons]
    assert all(abs(o - round(o)) < 1e-6 for o in offsets), "a note left the grid"
    assert show.port.sounding() == set(), "notes left sounding after the stop"
    assert show.port.closed


def test_a_run_is_the_same_every_time(tmp_path):
    mapping = write(tmp_path, fixed_tempo(100))
    runs = []
    for _ in range(2):
        show = offline_show(happy_frames(), mapping=mapping)
        start = play(show, 8.0)
        runs.append([(round(s.time - start, 9), s.message) for s in show.port.snapshot()])
    assert runs[0] == runs[1]


def test_pause_silences_at_the_next_beat_and_resume_plays_again(tmp_path):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    daemon = show.daemon
    start = play(show, 10.0, at={3.0: daemon.pause, 6.0: daemon.resume})
    assert show.note_ons(start + 3.6, start + 6.0) == [], "notes played while paused"
    assert show.note_ons(start + 6.0), "no notes after resume"
    held_at_pause = [s for s in show.port.snapshot() if start + 3.0 <= s.time < start + 3.6
                     and s.kind == CONTROL_CHANGE and s.message[1] == ALL_NOTES_OFF]
    assert held_at_pause, "pause did not release the channels"


def test_a_forced_emotion_lands_at_the_next_bar_and_release_follows_the_face_again(tmp_path):
    show = offline_show(happy_frames())
    daemon = show.daemon
    start = play(show, 24.0, at={4.0: lambda: daemon.force_emotion("sad"), 14.0: lambda: daemon.force_emotion(None)})
    modes = [(t - start, args[1]) for t, args in show.music()]
    forced = [mode for t, mode in modes if 8.0 < t < 14.0]
    after = [mode for t, mode in modes if t > 20.0]
    assert forced and set(forced) == {"minor"}, modes
    assert after and "minor" not in after, modes


def test_volume_scales_the_velocities_from_the_next_bar(tmp_path):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    start = play(show, 12.0, at={6.0: lambda: show.daemon.set_volume(0.5)})
    loud = [s.message[2] for s in show.note_ons(start + 2.0, start + 6.0)]
    soft = [s.message[2] for s in show.note_ons(start + 8.0, start + 12.0)]
    assert np.mean(soft) == pytest.approx(np.mean(loud) * 0.5, rel=0.25)


def test_panic_releases_every_channel_at_once(tmp_path):
    show = offline_show(happy_frames())
    start = play(show, 4.0, at={2.0: show.daemon.panic})
    at_panic = {s.channel for s in show.port.snapshot() if s.time == pytest.approx(start + 2.0)
                and s.kind == CONTROL_CHANGE and s.message[1] == ALL_NOTES_OFF}
    assert at_panic == set(range(16))


def test_a_saved_mapping_plays_from_the_next_bar_and_a_bad_save_keeps_it(tmp_path, caplog):
    path = tmp_path / "mapping.yaml"
    path.write_text(fixed_tempo(90))
    show = offline_show(happy_frames(), mapping=str(path))
    play(show, 20.0, at={5.0: lambda: path.write_text(fixed_tempo(150)),
                         11.0: lambda: path.write_text("emotions: [not, a, table")})
    tempos = [args[0] for _, args in show.music()]
    assert tempos[0] == 90.0 and 150.0 in tempos, tempos
    assert tempos[-1] == 150.0, "the bad save replaced the mapping"
    assert "mapping not reloaded" in caplog.text


def test_switching_mapping_from_the_control_surface_is_applied_by_the_main_loop(tmp_path):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(90)))
    other = write(tmp_path, fixed_tempo(140), "other.yaml")
    play(show, 12.0, at={4.0: lambda: show.daemon.set_mapping(other)})
    tempos = [args[0] for _, args in show.music()]
    assert tempos[0] == 90.0 and tempos[-1] == 140.0


def test_a_reloaded_mapping_sends_only_the_programs_that_changed_before_its_first_bar(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(fixed_tempo(120) + "parts: {melody: {program: 5}, bass: {program: 34, bank: 130}}\n")
    show = offline_show(happy_frames(), mapping=str(path))
    changed = "parts: {melody: {program: 9}, chords: {program: 50}, bass: {program: 34, bank: 130}}\n"
    play(show, 10.0, at={4.0: lambda: path.write_text(fixed_tempo(120) + changed)})
    sent = show.port.snapshot()
    programs = [s.message for s in sent if s.kind == PROGRAM_CHANGE]
    # as musicians count: 5 is 4 on the wire; the bass (34, bank 130 = MSB 1, LSB 2) is unchanged: not sent again
    assert programs == [(PROGRAM_CHANGE | 0, 4), (PROGRAM_CHANGE | 2, 33), (PROGRAM_CHANGE | 0, 8),
                        (PROGRAM_CHANGE | 1, 49)], programs
    banks = [s.message for s in sent if s.kind == CONTROL_CHANGE and s.message[1] in (0, 32)]
    assert banks == [(CONTROL_CHANGE | 2, 0, 1), (CONTROL_CHANGE | 2, 32, 2)]
    new_program = next(i for i, s in enumerate(sent) if s.message == (PROGRAM_CHANGE | 0, 8))
    assert any(s.kind == 0x90 and s.channel == 0 for s in sent[new_program:]), "no melody after the new program"


def test_a_lost_source_keeps_the_music_and_is_opened_again(tmp_path):
    opened = []

    def reopen():
        from emobridge.perception.sources import FrameListSource

        opened.append(1)
        return FrameListSource(happy_frames(), fps=10, loop=True, name="test frames")

    show = offline_show(happy_frames(), fail_after=30, reopen=reopen)
    start = play(show, 12.0)
    sources = [(round(t - start, 1), args) for t, args in show.osc.of("source")]
    assert [args for _, args in sources] == [(0, "test frames"), (1, "test frames")], sources
    assert opened == [1]
    lost_at = sources[0][0]
    assert show.note_ons(start + lost_at, start + lost_at + 1.0), "the music stopped with the source"


@pytest.mark.parametrize("how", ["cli", "mapping"])
def test_each_face_plays_a_voice_whether_asked_on_the_command_line_or_in_the_mapping(tmp_path, how):
    if how == "cli":
        show = offline_show(two_face_frames(), faces="each")
    else:
        show = offline_show(two_face_frames(), mapping=write(tmp_path, "faces: {follow: each}\n"))
    play(show, 10.0)
    channels = {s.channel for s in show.note_ons()}
    assert {4, 5} <= channels, channels  # faces.channels default 5 and 6 (counted from 1)
    assert show.port.sounding() == set()


def test_fade_out_silences_the_music_without_a_face(tmp_path):
    mapping = write(tmp_path, "smoothing: {no_face: fade_out, no_face_fade: 2.0}\n")
    show = offline_show(happy_frames() * 30 + empty_frames() * 100, mapping=mapping, loop=False)
    start = play(show, 13.0)
    assert show.note_ons(start, start + 3.0), "no music while the face was there"
    assert show.note_ons(start + 6.0, start + 13.0) == [], "notes after the fade"


def test_hold_keeps_the_music_without_a_face(tmp_path):
    mapping = write(tmp_path, "smoothing: {no_face: hold}\n")
    show = offline_show(happy_frames() * 30 + empty_frames() * 100, mapping=mapping, loop=False)
    start = play(show, 13.0)
    assert show.note_ons(start + 6.0, start + 13.0), "hold stopped the music"
    labels = [args[0] for t, args in show.osc.of("emotion") if t > start + 6.0]
    assert labels and set(labels) == {"happy"}


def test_a_file_that_ends_stops_the_show_with_stop_at_end():
    show = offline_show(happy_frames() * 40, loop=False, stop_at_end=True)
    start = play(show, 60.0)
    assert show.clock() - start < 5.0, "the show went on after its 4 s clip"
    assert show.note_ons(), "the clip played no music"
    assert show.port.sounding() == set()


class SlowOutput:
    """An output that blocks for 2 s on every bar, as a stalled Link call or OSC host would."""

    def __init__(self) -> None:
        self.calls = 0

    def send_emotion(self, state) -> None:
        pass

    def send_music(self, tempo, mode, density, bar_start) -> None:
        self.calls += 1
        time.sleep(2.0)

    def close(self) -> None:
        pass


def test_an_output_that_blocks_for_two_seconds_delays_no_note(tmp_path):
    """Real time here (the system clock): the notes must keep their deadlines while the output sleeps."""
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)), clock=SYSTEM_CLOCK)
    slow = SlowOutput()
    show.daemon.fanout.extras.append(slow)
    runner = threading.Thread(target=show.daemon.run)
    runner.start()
    assert show.daemon.started.wait(10)
    time.sleep(3.0)  # the first bar's output blocks until 2 s into the show, the second's from 2 s to 4 s
    show.daemon.request_stop()
    runner.join(10)
    assert slow.calls >= 1
    ons = show.note_ons()
    bar = show.daemon.player.clock
    assert len(ons) > 10
    # Each note's lateness against its sixteenth on the player's beat clock: a blocked output would add seconds.
    late = [s.time - bar.time_of(round(bar.beat_at(s.time) * 4) / 4) for s in ons]
    assert max(abs(x) for x in late) < 0.1, max(late)


# Modules whose code may run on the player's thread: the player and its clock, hand-offs (the conductor's
# queues, the outputs' queue), the port, and the few reads of the state and mapping a note or a program needs.
PLAYER_MAY_RUN = {"live/player.py", "live/clock.py", "live/conductor.py", "live/daemon.py", "live/fanout.py",
                  "live/faults.py", "outputs/ports.py", "state.py", "mapping/model.py", "music/params.py",
                  "threading.py", "queue.py", "_weakrefset.py", "collections/__init__.py", "<string>"}  # <string>: a dataclass's __init__


def test_the_player_thread_only_sends_midi_and_waits(tmp_path):
    """Every Python function called on the player's thread during a show with glides, voices and reloads."""
    ran: set[str] = set()

    def profile(frame, event, _arg):
        if event == "call" and threading.current_thread().name == "player":
            path = frame.f_code.co_filename.replace("\\", "/")
            ran.add(path.split("/daemon/", 1)[1] if "/daemon/" in path else re.sub(r".*/python3\.\d+/", "", path))

    path = tmp_path / "mapping.yaml"
    path.write_text("faces: {follow: each}\n")
    show = offline_show(two_face_frames(), mapping=str(path))
    threading.setprofile(profile)
    try:
        play(show, 16.0, at={5.0: lambda: path.write_text("faces: {follow: each}\nparts: {melody: {program: 3}}\n"),
                             9.0: lambda: show.daemon.force_emotion("angry")})
    finally:
        threading.setprofile(None)
    assert show.note_ons(), "the show played nothing"
    assert "live/player.py" in ran, "the profile saw nothing of the player"
    assert ran <= PLAYER_MAY_RUN, f"the player's thread ran {sorted(ran - PLAYER_MAY_RUN)}"


class FlakyComposer:
    """Wraps the real composer and fails on every third bar: the show must keep its time and go on."""

    def __init__(self, composer) -> None:
        self.composer, self.calls = composer, 0

    def __getattr__(self, name):
        return getattr(self.composer, name)

    def next_bar(self, state, voices=None):
        self.calls += 1
        if self.calls % 3 == 0:
            raise RuntimeError("composer bug")
        return self.composer.next_bar(state, voices)


def test_a_failing_composer_costs_a_silent_bar_not_the_show(tmp_path, caplog):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    conductor = show.daemon.conductor
    conductor.composer = FlakyComposer(conductor.composer)
    bars = []
    show.daemon.player.on_bar = bars.append
    play(show, 20.0)
    assert conductor.composer.calls >= 8
    silent = [i for i, bar in enumerate(bars) if not bar.events]
    assert silent and silent[0] == 2, [len(b.events) for b in bars]
    assert all(bar.events for i, bar in enumerate(bars) if i not in silent), "the music did not come back"
    assert [bar.index for bar in bars] == list(range(len(bars))), "a silent bar took another bar's number"
    assert "composer failed" in caplog.text and "composer bug" in caplog.text  # logged with its traceback


def test_a_clip_with_no_face_at_all_plays_neutral_music():
    show = offline_show(empty_frames())
    play(show, 8.0)
    assert [args for _, args in show.osc.of("emotion")][-1] == ("neutral", False)
    assert {args[1] for _, args in show.music()} == {"major"}  # neutral's mode
    assert show.note_ons(), "no music without a face"
    assert [args for _, args in show.osc.of("faces")][-1] == (0,)


def test_after_a_stall_the_player_goes_on_from_the_next_beat_without_a_burst(tmp_path):
    """A 5 s freeze (SIGSTOP, a closed lid) in the middle of the show, with MIDI clock on."""
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)), midi_clock=True)
    port, clock = show.port, show.clock
    begin = clock()  # virtual time stands still until the show starts: play() returns this same start
    frozen = []
    note_on = port.note_on

    def freezing_note_on(channel, pitch, velocity):
        note_on(channel, pitch, velocity)
        if not frozen and clock() > begin + 6.3:
            frozen.append(clock())
            clock.stall(5.0)

    port.note_on = freezing_note_on
    start = play(show, 20.0)
    assert frozen, "the stall never happened"
    woke = frozen[0] + 5.0
    busy = [s.time for s in port.snapshot() if s.kind == 0x90 or s.message == (0xF8,)]

    def in_window(t0: float) -> int:
        return sum(1 for t in busy if t0 <= t < t0 + 0.2)
    normal = max(in_window(start + 1.0 + 0.05 * i) for i in range(90))  # 200 ms windows before the stall
    assert in_window(woke) <= normal, f"{in_window(woke)} notes and pulses right after the stall, {normal} at most before"
    assert show.daemon.player.stalls == 1
    assert [t for t in busy if t > woke + 1.0], "the show did not go on after the stall"
    assert port.sounding() == set()


@pytest.mark.parametrize("thread", ["perception", "player", "conductor", "outputs", "main"])
def test_a_fault_in_any_threads_loop_is_logged_and_the_show_goes_on(tmp_path, caplog, thread):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    start = play(show, 12.0, at={4.0: lambda: show.daemon.faults.arm(thread)})
    assert show.daemon.restarts == {thread: 1}
    assert f"the {thread} thread failed; it runs again" in caplog.text
    assert "injected into the" in caplog.text  # with its traceback
    if thread != "outputs":  # the outputs' own failure is said on the log, not through the outputs
        assert (thread, 0) in [args for _, args in show.osc.of("status")]
    assert show.note_ons(start + 8.0), "the music did not go on after the fault"
    assert show.port.sounding() == set()


def test_the_watchdog_says_when_perception_stops_making_progress(tmp_path, caplog):
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    frame = show.daemon.perceiver._frame
    stuck = threading.Event()

    def frozen_frame(image):
        if stuck.is_set():
            time.sleep(0.0)  # the frame "hangs": no progress, though the thread is alive
            show.daemon.perceiver.frames -= 1
        frame(image)

    show.daemon.perceiver._frame = frozen_frame
    play(show, 14.0, at={3.0: stuck.set, 9.0: stuck.clear})
    statuses = [args for _, args in show.osc.of("status")]
    assert statuses == [("perception", 0), ("perception", 1)], statuses
    assert "perception has processed no frame" in caplog.text
    assert show.note_ons(), "the music stopped with perception"


def cc_heavy(bpm: int, count: int = 24) -> str:
    entries = "".join(f"  - {{source: valence, cc: {20 + i}, channel: {1 + i % 16}, rate: 1000}}\n" for i in range(count))
    return fixed_tempo(bpm) + "cc:\n" + entries


def test_a_thousand_switches_with_file_saves_and_heavy_ccs_raise_nothing(tmp_path, caplog):
    """The race of two threads applying mappings is gone: one owner applies them, at the next bar."""
    path = tmp_path / "live.yaml"
    path.write_text(cc_heavy(100))
    others = [write(tmp_path, cc_heavy(bpm), f"{bpm}.yaml") for bpm in (80, 120, 140)]
    show = offline_show(happy_frames(), mapping=str(path))
    actions = {1.0 + i * 0.01: (lambda i=i: show.daemon.set_mapping(others[i % 3])) for i in range(1000)}
    actions.update({1.005 + k * 0.5: (lambda k=k: path.write_text(cc_heavy(90 + k))) for k in range(20)})
    actions[11.5] = lambda: show.daemon.set_mapping(others[2])
    play(show, 16.0, at=actions)
    assert show.daemon.restarts == {}, "a thread failed"
    assert "Traceback" not in caplog.text and "failed" not in caplog.text, caplog.text[-2000:]
    tempos = [args[0] for _, args in show.music()]
    assert tempos[-1] == 140.0, "the last switch did not win"
    ccs = [s for s in show.port.snapshot() if s.kind == CONTROL_CHANGE and 20 <= s.message[1] < 44]
    assert ccs, "the mappings' CCs were not sent"


def test_a_mapping_deleted_garbled_or_made_a_folder_keeps_the_show_and_a_restored_one_plays(tmp_path, caplog):
    path = tmp_path / "show.yaml"
    path.write_text(fixed_tempo(90))

    def make_folder():
        path.unlink()
        path.mkdir()

    def restore():
        path.rmdir()
        path.write_text(fixed_tempo(120))

    show = offline_show(happy_frames(), mapping=str(path))
    start = play(show, 16.0, at={3.0: path.unlink, 5.0: lambda: path.write_bytes(b"\xff\xfe\x00garbage\x80\x81" * 50),
                                 7.0: make_folder, 10.0: restore})
    music = [(t - start, args[0]) for t, args in show.music()]
    assert {tempo for t, tempo in music if t < 10.0} == {90.0}, music
    assert music[-1][1] == 120.0, "the restored file never played"
    assert show.note_ons(start + 3.0, start + 10.0), "the music stopped while the file was broken"
    lines = [r.getMessage() for r in caplog.records if "show.yaml" in r.getMessage()]
    missing = [line for line in lines if "missing" in line]
    refused = [line for line in lines if "not reloaded" in line]
    assert len(missing) == 1, missing  # once when deleted, not on every poll
    assert len(refused) == 2, refused  # the garbage and the folder, once each
    assert all("keeps playing" in line for line in missing + refused)
    assert show.daemon.restarts == {}


def test_a_folder_camera_unplugged_and_back_keeps_the_music_and_reconnects(tmp_path, caplog):
    """A real image folder (the camera) renamed away and back: the no-face policy plays on, /source 0 then 1."""
    import cv2

    from emobridge.perception.sources import ImageFolderSource

    folder = tmp_path / "camera"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"face{i}.png"), happy_frames()[0])
    gone = tmp_path / "camera-unplugged"
    open_folder = functools.partial(ImageFolderSource, folder, fps=10.0, loop=True)
    show = offline_show(happy_frames(), reopen=open_folder)
    show.daemon.perceiver.source = open_folder()
    start = play(show, 20.0, at={4.0: lambda: folder.rename(gone), 10.0: lambda: gone.rename(folder)})
    sources = [(t - start, args) for t, args in show.osc.of("source")]
    assert [args for _, args in sources] == [(0, str(folder)), (1, str(folder))], sources
    lost, back = sources[0][0], sources[1][0]
    assert 4.0 <= lost < 5.0 and 10.0 <= back < 16.0, sources  # retried with backoff (0.5 s doubling to 5 s)
    assert show.note_ons(start + lost + 1.0, start + back), "the music stopped while the camera was gone"
    faces = [args for t, args in show.osc.of("faces") if start + lost < t < start + back]
    assert faces and set(faces) == {(0,)}, "/faces 0 while the source is gone"
    emotions = [args for t, args in show.osc.of("emotion") if t > start + back + 1.0]
    assert emotions and emotions[-1][1] is True, "frames with the face never came back"
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 1, retries  # logged once per outage, not once per attempt


def test_the_watchdog_says_when_the_midi_port_is_lost_and_back(tmp_path, caplog):
    from emobridge.outputs.ports import PortHealth

    caplog.set_level("INFO")
    show = offline_show(happy_frames(), mapping=write(tmp_path, fixed_tempo(120)))
    states = [PortHealth(True, "fake port is open")]
    show.port.health = lambda: states[-1]
    play(show, 10.0, at={3.0: lambda: states.append(PortHealth(False, "the MIDI port is gone (JACK stopped)", 1)),
                         6.0: lambda: states.append(PortHealth(True, "the MIDI port is back after 3 s", 2))})
    assert [args for _, args in show.osc.of("status")] == [("midi", 0), ("midi", 1)]
    assert "the MIDI port is gone" in caplog.text and "is back after 3 s" in caplog.text
