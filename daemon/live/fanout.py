"""The outputs' own thread: OSC targets, Ableton Link and the recording's log, fed through a queue.

Perception and the player only *post* events (a frame's emotion, the faces, the source coming and
going, a bar starting); this thread sends them. An output that blocks (a Link call can take
seconds, a DNS hiccup, a full socket buffer) then delays other outputs, never a note or a frame.
The thread owns the list of outputs: replacing the OSC sender after a mapping change is a request
it carries out between two events, so nobody sends through a sender that is being closed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..log import LogLimiter
from ..music.params import Bar, MusicParams
from ..state import EmotionState
from .faults import Faults

log = logging.getLogger("emobridge")


class Output(Protocol):
    """What every output offers (OSC, Link); the OSC sender also has send_source and send_faces."""

    def send_emotion(self, state: EmotionState) -> None: ...
    def send_music(self, tempo: float, mode: str, density: float, bar_start: bool) -> None: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class TempoChanged:
    """A beat inside a bar whose tempo differs from the beat before (a glide step)."""

    tempo: float  # BPM of the beat that starts now, as written (before any speed-up)
    time: float   # clock seconds of that beat


@dataclass(frozen=True)
class BarStarted:
    bar: Bar
    time: float          # clock seconds of its downbeat (for the recording's tempo map)
    state: EmotionState  # what the music followed when the bar was asked for


class Fanout:
    """osc: the OSC sender (it may be replaced); extras: other outputs (Link); recorder: the session
    recording, which logs the emotion and the tempo (its MIDI arrives through the port's tee)."""

    CAPACITY = 512  # events waiting at most (about 15 s of frames at 30 fps); beyond it new ones are dropped
    POLL = 0.1  # seconds between looks at the stop event while nothing happens

    def __init__(self, osc: Any, extras: Sequence[Output] = (), recorder: Any = None, speed: float = 1.0):
        self.osc = osc
        self.extras = list(extras)
        self.recorder = recorder
        self.speed = speed  # the music clock's speed-up, so the recording's tempo is what was heard
        self._events: queue.Queue[tuple[str, tuple]] = queue.Queue(self.CAPACITY)
        self.dropped = 0  # events refused because the queue was full (reported from this thread)
        self._reported_drops = 0
        self._forced: str | None = None
        self._transport = False  # the DAW's transport was started (daw.transport): stopped at the end  # the emotion forced on the music now, for the recording's log
        self._music: MusicParams | None = None  # the bar playing: its mode and density go with a glide's tempos
        self.warn = LogLimiter(log, 5.0)
        self.faults = Faults()

    @property
    def outputs(self) -> list[Output]:
        return [self.osc, *self.extras]

    # --- posting, from any thread (never blocks) -------------------------------
    def _post(self, kind: str, *args: Any) -> None:
        try:
            self._events.put_nowait((kind, args))
        except queue.Full:
            self.dropped += 1

    def emotion(self, state: EmotionState) -> None:
        self._post("emotion", state)

    def faces(self, faces: Sequence[Any]) -> None:
        self._post("faces", faces)

    def forced(self, emotion: str | None) -> None:
        """The control surface forced *emotion* on the music (None: the face leads again)."""
        self._post("forced", emotion)

    def source(self, ok: bool, name: str) -> None:
        self._post("source", ok, name)

    def bar(self, started: BarStarted) -> None:
        self._post("bar", started)

    def tempo(self, changed: TempoChanged) -> None:
        self._post("tempo", changed)

    def status(self, stage: str, ok: bool, message: str) -> None:
        """A stage's health: failed, stalled, or well again (for the OSC /status message)."""
        self._post("status", stage, ok, message)

    def replace_osc(self, sender: Any) -> None:
        """Send through *sender* from now on; the old sender is closed by this thread."""
        self._post("replace_osc", sender)

    # --- the thread ------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve events until *stop*, then what is still queued (the last bar's OSC, the final emotion)."""
        while True:
            try:
                kind, args = self._events.get(timeout=self.POLL)
            except queue.Empty:
                if stop.is_set():
                    return
                continue
            self.faults.check("outputs")
            self._serve(kind, args)
            self._report_drops()

    def drain(self) -> None:
        """Serve what is queued now (the caller owns the outputs: the thread has ended)."""
        while True:
            try:
                kind, args = self._events.get_nowait()
            except queue.Empty:
                return
            self._serve(kind, args)

    def _serve(self, kind: str, args: tuple) -> None:
        try:
            getattr(self, f"_on_{kind}")(*args)
        except Exception as error:  # an output must never end the outputs' thread
            self.warn("output failed on %s (%s: %s); still sending", kind, type(error).__name__, error)

    def _report_drops(self) -> None:
        if self.dropped != self._reported_drops:
            self.warn("the outputs fell behind (a slow OSC target or Link?): %d events dropped so far", self.dropped)
            self._reported_drops = self.dropped

    def _on_emotion(self, state: EmotionState) -> None:
        for output in self.outputs:
            output.send_emotion(state)
        if self.recorder is not None:
            self.recorder.emotion(state, self._forced)

    def _on_forced(self, emotion: str | None) -> None:
        self._forced = emotion
        send = getattr(self.osc, "send_forced", None)  # the OSC sender has it; a test's stand-in may not
        if send is not None:
            send(emotion)

    def _on_faces(self, faces: Sequence[Any]) -> None:
        self.osc.send_faces(faces)

    def _on_source(self, ok: bool, name: str) -> None:
        self.osc.send_source(ok, name)

    def _on_bar(self, started: BarStarted) -> None:
        bar, state = started.bar, started.state
        params = bar.params
        self._music = params
        playing = bar.tempo_at(0)  # during a glide the bar's first beat, not the target it heads for
        if self.recorder is not None:
            self.recorder.tempo(playing * self.speed, started.time)
        for output in self.outputs:
            output.send_music(playing, params.mode, params.density, bar_start=True)
            align = getattr(output, "send_bar_line", None)  # a Link leader keeps the session's bars on ours
            if align is not None:
                align(started.time, params.beats_per_bar, 60.0 / (playing * self.speed))
        self._drive_daw(started)
        log.info("bar %d: %s %.2f (v %+.2f a %+.2f) → %.0f BPM (towards %.0f) %s density %.2f", bar.index,
                 state.label, state.confidence, state.valence, state.arousal, playing, params.tempo, params.mode,
                 params.density)

    def _drive_daw(self, started: BarStarted) -> None:
        """The mapping's daw: at a bar line (the OSC sender has it; a test's stand-in may not)."""
        bar = started.bar
        if not self._transport and hasattr(self.osc, "send_daw_transport"):
            self._transport = True
            self.osc.send_daw_transport(True)
        send = getattr(self.osc, "send_daw_bar", None)
        if send is not None:
            send(started.state, bar.params.tonic, bar.params.mode, bar.params.emotion, bar.phrase_bar)

    def _on_tempo(self, changed: TempoChanged) -> None:
        """A glide step: every output hears the tempo now playing (OSC tempo presets and Link on change)."""
        if self.recorder is not None:
            self.recorder.tempo(changed.tempo * self.speed, changed.time)
        if self._music is None:
            return
        for output in self.outputs:
            output.send_music(changed.tempo, self._music.mode, self._music.density, bar_start=False)

    def _on_status(self, stage: str, ok: bool, message: str) -> None:
        self.osc.send_status(stage, ok, message)

    def _on_transport(self) -> None:
        self._transport = False
        self.osc.send_daw_transport(False)

    def _on_replace_osc(self, sender: Any) -> None:
        old, self.osc = self.osc, sender
        old.close()

    def close(self) -> None:
        """Stop the DAW's transport if the show started it, then close every output (after the thread has ended)."""
        if self._transport:
            self._serve("transport", ())
        for output in self.outputs:
            try:
                output.close()
            except Exception as error:
                log.warning("closing an output failed (%s)", error)
