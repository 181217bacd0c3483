"""MIDI learn helper: a slow sweep of one control change and nothing else.

A DAW's MIDI-learn (Ableton Live's MIDI Map mode, Reaper's "Learn" button) binds a knob
to the first controller it hears. While emobridge plays, notes and several CCs arrive at
once; ``emobridge learn --cc N`` sends only CC N on one channel, rising 0 → 127 and falling
back to 0, so the DAW learns exactly that controller (and you see the knob move).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..outputs.ports import CHANNEL_MODE, MidiPort
from ..errors import LearnError

MAX_CC = CHANNEL_MODE.start - 1  # the controllers above are channel mode messages (all sound off, reset, ...)
# Controllers that work but that a DAW or a synth may also treat specially
SPECIAL_CCS: dict[int, str] = {
    0: "bank select (MSB)", 1: "modulation wheel", 6: "data entry (MSB)", 7: "channel volume", 10: "pan",
    32: "bank select (LSB)", 38: "data entry (LSB)", 64: "sustain pedal", 96: "data increment",
    97: "data decrement", 98: "NRPN (LSB)", 99: "NRPN (MSB)", 100: "RPN (LSB)", 101: "RPN (MSB)",
}


def check_cc(cc: object) -> int:
    if isinstance(cc, bool) or not isinstance(cc, int):
        raise LearnError(f"CC number {cc!r} is not a whole number: use 0 to {MAX_CC}")
    if cc in CHANNEL_MODE:
        raise LearnError(f"CC {cc} is a channel mode message (120-127 switch notes and controllers off): "
                         f"use a controller number from 0 to {MAX_CC}")
    if not 0 <= cc <= MAX_CC:
        raise LearnError(f"CC number {cc} is out of range: use 0 to {MAX_CC}")
    return cc


def check_channel(channel: object) -> int:
    """A channel as musicians count it (1-16) → the wire's 0-15."""
    if isinstance(channel, bool) or not isinstance(channel, int) or not 1 <= channel <= 16:
        raise LearnError(f"MIDI channel {channel!r} is out of range: use 1 to 16")
    return channel - 1


def cc_note(cc: int) -> str | None:
    """A warning for controllers with a common fixed meaning, or None."""
    meaning = SPECIAL_CCS.get(cc)
    return None if meaning is None else f"CC {cc} is usually {meaning}; a free controller (e.g. 20-31) is safer to learn"


def sweep_values(repeats: int = 1) -> list[int]:
    """0 up to 127 and back to 0, *repeats* times, without repeating the 0 between sweeps."""
    one = list(range(0, 128)) + list(range(126, -1, -1))
    return one + one[1:] * (repeats - 1)


def sweep(midi: MidiPort, cc: int, channel: int, seconds: float = 6.0, repeats: int = 2,
          sleep: Callable[[float], None] = time.sleep) -> int:
    """Send CC *cc* on *channel* (1-16) from 0 up to 127 and back down, *repeats* times.

    One up-and-down sweep takes *seconds*; the whole call about ``seconds * repeats``.
    Returns the number of messages sent. Raises :class:`LearnError` for a bad cc, channel,
    duration or repeat count before anything is sent.
    """
    number, wire_channel = check_cc(cc), check_channel(channel)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 600:
        raise LearnError(f"sweep duration {seconds!r} is out of range: use more than 0 and at most 600 seconds")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or not 1 <= repeats <= 100:
        raise LearnError(f"repeat count {repeats!r} is out of range: use 1 to 100")
    values = sweep_values(repeats)
    step = seconds / 254  # 254 moves make one sweep: 127 up, 127 down
    for index, value in enumerate(values):
        if index:
            sleep(step)
        midi.control_change(wire_channel, number, value)
    return len(values)
