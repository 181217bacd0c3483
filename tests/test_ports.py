"""The note bookkeeping that every port shares, proven through FakePort, and Tee's copies to listeners."""

from __future__ import annotations

import itertools
import threading
import time

from emobridge.outputs.ports import (ALL_NOTES_OFF, CONTROL_CHANGE, NOTE_OFF, NOTE_ON, PROGRAM_CHANGE, START, SUSTAIN,
                                     TIMING_CLOCK, FakePort, Sent, Tee)


def ticking() -> itertools.count:
    """A clock that reads 0, 1, 2, ... seconds: every message gets its own time."""
    return itertools.count()


def yielding() -> float:
    """A clock that lets other threads run while a message is being written, where a race would show."""
    time.sleep(0)
    return time.monotonic()


def test_messages_carry_the_time_of_the_ports_clock():
    clock = ticking()
    port = FakePort(now=lambda: float(next(clock)))
    port.note_on(0, 60, 100)
    port.control_change(1, 74, 64)
    port.program_change(2, 11)
    port.send([TIMING_CLOCK])
    assert port.snapshot() == [Sent(0.0, (NOTE_ON, 60, 100)), Sent(1.0, (CONTROL_CHANGE | 1, 74, 64)),
                               Sent(2.0, (PROGRAM_CHANGE | 2, 11)), Sent(3.0, (TIMING_CLOCK,))]


def test_velocities_and_values_stay_in_range():
    port = FakePort()
    port.note_on(0, 60, 0)    # velocity 0 would be a note-off on the wire
    port.note_on(0, 61, 300)
    port.control_change(0, 1, -5)
    port.control_change(0, 1, 200)
    assert port.notes_on() == [(0, 60, 1), (0, 61, 127)]
    assert port.messages()[2:] == [(CONTROL_CHANGE, 1, 0), (CONTROL_CHANGE, 1, 127)]


def test_a_repeated_pitch_is_retriggered_and_released_by_its_last_note_off():
    port = FakePort()
    port.note_on(1, 64, 90)
    port.note_on(1, 64, 80)  # same key while it sounds: off first, so no voice is left hanging
    assert port.messages() == [(NOTE_ON | 1, 64, 90), (NOTE_OFF | 1, 64, 0), (NOTE_ON | 1, 64, 80)]
    port.note_off(1, 64)  # the first note's end: the second still sounds
    assert port.sounding() == {(1, 64)} and len(port.messages()) == 3
    port.note_off(1, 64)
    assert port.messages()[-1] == (NOTE_OFF | 1, 64, 0) and port.sounding() == set()
    port.note_off(1, 64)  # one too many: nothing is sent
    assert len(port.messages()) == 4


def test_the_same_pitch_on_two_channels_is_two_notes():
    port = FakePort()
    port.note_on(0, 60, 100)
    port.note_on(1, 60, 100)
    port.note_off(0, 60)
    assert port.messages() == [(NOTE_ON, 60, 100), (NOTE_ON | 1, 60, 100), (NOTE_OFF, 60, 0)]
    assert port.sounding() == {(1, 60)}


def test_panic_releases_every_note_then_clears_each_channel_used():
    port = FakePort()
    port.note_on(0, 60, 100)
    port.note_on(2, 40, 100)
    port.note_on(2, 40, 100)  # twice: still one note-off at the panic
    port.note_off(0, 60)
    port.note_on(0, 62, 100)
    before = len(port.messages())
    port.panic({9})
    got = port.messages()[before:]
    assert set(got[:2]) == {(NOTE_OFF, 62, 0), (NOTE_OFF | 2, 40, 0)}
    assert got[2:] == [(CONTROL_CHANGE | ch, control, 0) for ch in (0, 2, 9) for control in (SUSTAIN, ALL_NOTES_OFF)]
    assert port.sounding() == set()
    port.note_off(2, 40)  # the player's own note-offs after a panic send nothing
    port.note_off(0, 62)
    assert len(port.messages()) == before + len(got)


def test_channels_used_are_cleared_again_at_a_later_panic():
    port = FakePort()
    port.note_on(3, 50, 100)
    port.note_off(3, 50)
    port.panic()
    port.panic()  # nothing sounds, but channel 3 was used: a synth's sustain may still hold it
    assert port.messages()[-2:] == [(CONTROL_CHANGE | 3, SUSTAIN, 0), (CONTROL_CHANGE | 3, ALL_NOTES_OFF, 0)]


def test_close_releases_what_sounds_and_closes_once_released():
    port = FakePort()
    port.note_on(0, 60, 100)
    port.close()
    assert port.closed and port.sounding() == set()


def test_two_threads_on_one_key_never_leave_a_note_or_skip_a_retrigger():
    """The player and a panic or a second voice may hit the same key at once: the lock keeps the bookkeeping whole."""
    port = FakePort(now=yielding)
    start = threading.Barrier(4)

    def play(channel: int) -> None:
        start.wait()
        for _ in range(1000):
            port.note_on(channel, 60, 100)
            port.note_off(channel, 60)

    threads = [threading.Thread(target=play, args=(channel,)) for channel in (0, 0, 1, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert port.sounding() == set()
    for channel in (0, 1):
        sent = [s.message for s in port.snapshot() if s.channel == channel]
        assert sum(m[0] == NOTE_ON | channel for m in sent) == 2000
        # Every note-on finds the key released: by the last note-off or by a retrigger just before it.
        assert all(a[0] == NOTE_OFF | channel for a, b in zip(sent, sent[1:]) if b[0] == NOTE_ON | channel)


class Heard:
    """A listener as the recorder is one: (bytes, time) of each message copied to it."""

    def __init__(self) -> None:
        self.got: list[tuple[tuple[int, ...], float]] = []

    def message(self, message: list[int], t: float) -> None:
        self.got.append((tuple(message), t))


def test_tee_plays_on_the_primary_and_copies_channel_messages_with_their_time():
    primary, heard, other = FakePort(description="fake 'daw'"), Heard(), Heard()
    clock = ticking()
    tee = Tee(primary, heard, other, now=lambda: float(next(clock)))
    assert tee.description == "fake 'daw'"
    tee.send([START])
    tee.note_on(0, 60, 100)
    tee.send([TIMING_CLOCK])
    tee.note_on(0, 60, 90)  # retriggered: the listener hears the extra note-off too
    tee.control_change(1, 7, 100)
    tee.note_off(0, 60)
    tee.note_off(0, 60)
    channel = [(NOTE_ON, 60, 100), (NOTE_OFF, 60, 0), (NOTE_ON, 60, 90), (CONTROL_CHANGE | 1, 7, 100), (NOTE_OFF, 60, 0)]
    assert primary.messages() == [(START,), channel[0], (TIMING_CLOCK,), *channel[1:]]
    assert heard.got == other.got == [(m, float(t)) for t, m in enumerate(channel)]


def test_tee_panic_reaches_primary_and_listener_and_close_closes_the_primary():
    primary, heard = FakePort(), Heard()
    tee = Tee(primary, heard)
    tee.note_on(4, 70, 100)
    tee.close()
    released = [(NOTE_OFF | 4, 70, 0), (CONTROL_CHANGE | 4, SUSTAIN, 0), (CONTROL_CHANGE | 4, ALL_NOTES_OFF, 0)]
    assert [m for m, _ in heard.got[1:]] == released
    assert primary.messages()[1:] == released + [(NOTE_OFF | 4, 70, 0)]  # the wire's closing repeat, not recorded
    assert primary.closed and primary.sounding() == set()


def test_refresh_sends_again_the_note_offs_of_the_last_bar_and_never_cuts_a_note():
    """The player refreshes at each bar line: a receiver that missed a note-off gets it then."""
    port = FakePort()
    port.note_on(0, 60, 100)
    port.note_on(0, 62, 100)
    port.note_off(0, 60)
    port.note_off(0, 62)
    port.note_on(0, 62, 90)  # struck again: it sounds, and a refresh must leave it alone
    port.note_on(1, 40, 100)  # never released: nothing to refresh
    before = len(port.messages())
    port.refresh()
    assert port.messages()[before:] == [(NOTE_OFF, 60, 0)]
    assert port.sounding() == {(0, 62), (1, 40)}
    before = len(port.messages())
    port.refresh()  # nothing released since the last refresh
    assert len(port.messages()) == before
    port.note_off(0, 62)
    port.panic()  # 40 on channel 1 ends with the panic; the all-notes-offs count as releases too
    before = len(port.messages())
    port.refresh()
    assert set(port.messages()[before:]) == {(NOTE_OFF, 62, 0), (NOTE_OFF | 1, 40, 0)}


def test_heal_releases_every_key_played_that_does_not_sound_and_only_those_before_a_mark():
    port = FakePort()
    for pitch in (60, 62, 64):
        port.note_on(0, pitch, 100)
        port.note_off(0, pitch)
    port.note_on(0, 62, 100)  # sounds now: a heal leaves it
    mark = port.mark()
    port.note_on(3, 50, 100)
    port.note_off(3, 50)      # released after the mark: a heal(before=mark) leaves it
    before = len(port.messages())
    assert port.heal(before=mark) == 2
    assert port.messages()[before:] == [(NOTE_OFF, 60, 0), (NOTE_OFF, 64, 0)]
    before = len(port.messages())
    assert port.heal() == 3
    assert port.messages()[before:] == [(NOTE_OFF, 60, 0), (NOTE_OFF, 64, 0), (NOTE_OFF | 3, 50, 0)]
    assert port.sounding() == {(0, 62)}


def test_the_wire_view_follows_raw_sends_so_a_tees_primary_refreshes_what_it_sent():
    """Behind a Tee the primary only gets raw bytes; its refresh still knows the notes, and the listener
    (the recorder) hears none of the repeats."""
    primary, heard = FakePort(), Heard()
    tee = Tee(primary, heard)
    tee.note_on(2, 70, 100)
    tee.note_off(2, 70)
    copied = len(heard.got)
    tee.refresh()
    assert primary.messages()[-1] == (NOTE_OFF | 2, 70, 0) and len(heard.got) == copied
    assert tee.heal() == 1 and primary.messages()[-1] == (NOTE_OFF | 2, 70, 0)
    assert tee.health() == primary.health() and tee.health().ok


def test_a_refresh_repeats_one_bar_however_long_the_show():
    port = FakePort()
    for bar in range(500):
        for pitch in range(48, 72):
            port.note_on(bar % 16, pitch, 100)
            port.note_off(bar % 16, pitch)
        port.refresh()
    port.note_on(0, 60, 100)
    port.note_off(0, 60)
    before = len(port.messages())
    port.refresh()  # only what was released since the last refresh: one note-off, not the show's history
    assert port.messages()[before:] == [(NOTE_OFF, 60, 0)]


def test_close_repeats_the_note_offs_of_the_bar_after_the_panic():
    """The player's panic at shutdown may reach a late JACK reader as copies of its first message: the
    closing panic sends those note-offs again, once, after its own (and nothing from before the bar line)."""
    port = FakePort()
    port.note_on(0, 50, 100)
    port.note_off(0, 50)
    port.refresh()  # a bar line: key 50 was released in an earlier bar
    for pitch in (60, 64, 67):
        port.note_on(1, pitch, 90)
    port.panic({1})  # the player's panic as it exits
    before = len(port.messages())
    port.close()
    closing = port.messages()[before:]
    assert closing == [(CONTROL_CHANGE | 0, SUSTAIN, 0), (CONTROL_CHANGE | 0, ALL_NOTES_OFF, 0),
                       (CONTROL_CHANGE | 1, SUSTAIN, 0), (CONTROL_CHANGE | 1, ALL_NOTES_OFF, 0),
                       (NOTE_OFF | 1, 60, 0), (NOTE_OFF | 1, 64, 0), (NOTE_OFF | 1, 67, 0)]


def test_nothing_is_struck_between_the_closing_panic_and_the_close():
    """A forced shutdown closes the port while the player may still send: no note may sound after close."""
    for _ in range(20):
        port = FakePort()
        stop = threading.Event()

        def play() -> None:
            pitch = 0
            while not stop.is_set():
                port.note_on(0, 60 + pitch % 12, 100)
                pitch += 1
        player = threading.Thread(target=play)
        player.start()
        port.close()
        stop.set()
        player.join()
        assert port.sounding() == set()
