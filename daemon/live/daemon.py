"""The show's lifecycle: threads, signals, hot reload, the control surface.

Threads and what each one owns:

- **perception** (:class:`~emobridge.live.perceive.PerceptionLoop`): the source, the perception
  chain, the CC mapper; publishes the latest emotion.
- **player** (:class:`~emobridge.live.player.Player`): the MIDI port's note timing; MIDI sends and
  deadline waits only.
- **conductor** (:class:`~emobridge.live.conductor.Conductor`): the composer; composes each bar a beat
  ahead, when the player asks.
- **outputs** (:class:`~emobridge.live.fanout.Fanout`): OSC, Link and the recording's log.
- **main** (:meth:`Daemon.run`): signals (:mod:`.signals`), the mapping (reload and switching), the
  preview window, the watchdog (:mod:`.watchdog`), and the shutdown that releases every note.

Other threads (the OSC control server) only *request*: a flag or a queued request that the owner
applies at its defined point — the next beat (pause, volume), the next bar (mapping, forced
emotion), the next frame (smoothing, faces, CCs), the next tick of the main loop (switching files).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import queue
import signal
import threading
from collections.abc import Callable

import numpy as np

from ..errors import MappingError, ProfileError
from ..labels import EMOTIONS
from ..log import LogLimiter
from ..mapping import Mapping, MappingWatcher
from ..music.composer import Composer
from ..music.params import Bar
from ..perception.calibration import Profile
from ..state import EmotionState
from .clock import prompt_threads
from .conductor import Conductor
from .control import ControlServer
from .faults import Faults
from .fanout import BarStarted, Fanout, TempoChanged
from .perceive import PerceptionLoop, PerceptionSettings
from .player import Player
from .preview import PreviewFrame, render
from .signals import SignalFlags
from .watchdog import Watchdog
from .wiring import Parts, RunConfig, build_parts

log = logging.getLogger("emobridge")

TICK = 0.05  # seconds between two turns of the main loop: how soon a signal or a request is seen
RELOAD_PERIOD = 0.25  # seconds between checks of the mapping file
PREVIEW_PERIOD = 1 / 30  # seconds between preview redraws: as smooth as a webcam, no more
PREVIEW_STALE = 1.0  # seconds without a new picture (source lost) after which the window shows a blank one
BLANK_PICTURE = np.zeros((480, 640, 3), dtype=np.uint8)  # what the window shows without a picture
JOIN_TIMEOUT = 2.0  # seconds a thread gets to finish at shutdown
RESTART_PAUSE = 0.1  # seconds before a thread whose loop failed runs it again
FORCE_AFTER_SIGNALS = 3  # stop signals that make the shutdown skip waiting for threads


class Daemon:
    """The whole show; ``parts`` default to the real ones for ``config`` (see :mod:`.wiring`)."""

    def __init__(self, config: RunConfig, parts: Parts | None = None):
        self.config = config
        self.parts = parts = parts or build_parts(config)
        parts.mapping = self._with_overrides(parts.mapping)
        self.clock = parts.clock
        self.mapping: Mapping = parts.mapping  # the mapping in force (owned by the main thread)
        self.watcher: MappingWatcher | None = parts.watcher
        self.mapping_missing = False
        self.stop = threading.Event()
        self.started = threading.Event()  # set once every thread runs (in-process tests start their script then)
        self.signals = SignalFlags()
        # run by the main thread: a callable, or the name/path of a mapping to switch to
        self.requests: queue.SimpleQueue[Callable[[], None] | str] = queue.SimpleQueue()
        self.warn_switch = LogLimiter(log, 5.0, logging.ERROR)
        self.forced: EmotionState | None = None  # an emotion forced from the control surface, or None
        self.fanout = Fanout(parts.osc, parts.extras, parts.recorder, config.speed)
        self.conductor = Conductor(Composer(parts.mapping, seed=config.seed))
        settings = PerceptionSettings(max_rate=config.max_rate, fast=config.fast, stop_at_end=config.stop_at_end,
                                      faces=config.faces, preview=parts.preview is not None,
                                      profile_fixed=config.profile is not None, profile=parts.profile_path)
        self.perceiver = PerceptionLoop(parts.perception, parts.source, parts.open_source, self.fanout, parts.port,
                                        parts.mapping, self.clock, self.music_state, self.current_bar, settings)
        self.player = Player(self.conductor, parts.port, self.music_state, on_bar=self._bar_started,
                             clock=self.clock, midi_clock=config.midi_clock, speed=config.speed,
                             voices=lambda: self.perceiver.voices, start_conductor=False,
                             on_tempo=self._tempo_changed, master=parts.master)
        self.preview = parts.preview
        self.faults = Faults.from_env()
        for loop in (self.player, self.conductor, self.fanout, self.perceiver):
            loop.faults = self.faults
        self.watchdog = Watchdog(self.clock, self.perceiver, self.player, self.fanout, parts.port, config.speed)
        self.restarts = self.watchdog.restarts  # thread → times its loop failed and was run again
        self._next_reload = 0.0

    # --- what the music reads (any thread; plain attribute reads) --------------
    def music_state(self) -> EmotionState:
        """What the music follows: the face, or an emotion forced from the control surface."""
        return self.forced or self.perceiver.latest

    def current_bar(self) -> Bar | None:
        return self.player.current

    def _bar_started(self, bar: Bar) -> None:
        """On the player's thread at each downbeat: hand the bar on, nothing more."""
        self.fanout.bar(BarStarted(bar, self.clock(), self.music_state()))

    def _tempo_changed(self, tempo: float) -> None:
        """On the player's thread at a glide's beat: hand the tempo on, nothing more."""
        self.fanout.tempo(TempoChanged(tempo, self.clock()))

    # --- lifecycle -----------------------------------------------------------
    def run(self, restore_signals: bool = True) -> int:
        """Play until stopped; 0. *restore_signals* False (a process that exits next): the stop-signal handlers stay,
        so a late signal of a burst, delivered after the show, only counts (a default handler would fail the exit)."""
        log.info("playing on %s; OSC → %s; source: %s", self.parts.port.description, self.parts.osc.describe(),
                 self.parts.source.name)
        control = self._start_control()
        previous = self._install_signal_handlers()
        with prompt_threads():
            threads = [self._start("outputs", self.fanout.run, timed=False),
                       self._start("conductor", self.conductor.run, timed=False),
                       self._start("player", self.player.run), self._start("perception", self.perceiver.run)]
            self.clock.enter()  # the main loop waits on the clock too
            self.started.set()
            try:
                self._main_loop()
            finally:
                self.clock.leave()
                self._shutdown(threads)
                if control:
                    control.close()
                for sig, handler in previous.items() if restore_signals else ():
                    signal.signal(sig, handler)
                self.signals.close_wakeup()
        return 0

    def request_stop(self) -> None:
        """Stop the show as a signal would (from any thread)."""
        self.signals.stops += 1

    def _start(self, name: str, loop: Callable[[threading.Event], None], timed: bool = True) -> threading.Thread:
        """A daemon thread running *loop* until stop; *timed* threads wait on the show's clock.

        A loop that raises is run again after a short pause (the player's run releases its notes on the
        way out and starts a fresh timeline): one failing stage must not end the show. The main thread
        logs the failure (nothing but MIDI and waits happens on the player's thread, even here).
        """
        if timed:
            self.clock.enter()

        def body() -> None:
            try:
                while True:
                    try:
                        loop(self.stop)
                        return
                    except Exception as error:
                        self.watchdog.failed(name, error)
                        if not self.clock.wait_until(self.clock() + RESTART_PAUSE, self.stop):
                            return
            finally:
                if name == "perception" and self.perceiver.ended:
                    self.stop.set()  # the source ended for good (stop_at_end): the show is over
                if timed:  # after the stop: an offline clock must not run on while nobody works
                    self.clock.leave()
        thread = threading.Thread(target=body, name=name, daemon=True)
        thread.start()
        return thread

    def _start_control(self) -> ControlServer | None:
        if self.parts.control_address is None:
            return None
        host, port = self.parts.control_address
        control = ControlServer(self, host, port, prefix=self.config.osc_prefix, allow=self.parts.control_allow).start()
        log.info("OSC control on %s:%d (%s/control/...)", host, control.port, self.config.osc_prefix)
        return control

    def _install_signal_handlers(self) -> dict:
        if threading.current_thread() is not threading.main_thread():
            return {}  # an in-process test: signals are the test's business
        names = ("SIGINT", "SIGTERM", "SIGHUP")
        signals = [getattr(signal, name) for name in names if hasattr(signal, name)]
        if self.clock.realtime:
            self.signals.open_wakeup()
        return {sig: signal.signal(sig, self.signals.handle) for sig in signals}

    def _main_loop(self) -> None:
        while not self.stop.is_set():
            period = PREVIEW_PERIOD if self.preview is not None else TICK
            if self.signals.wakeup is not None:
                self.signals.wait(period)  # a signal ends the wait at once
            else:
                self.clock.wait_until(self.clock() + period, self.stop)
            try:
                self._main_turn()
            except Exception as error:  # the main loop is the shutdown's owner: it must keep turning
                self.watchdog.failed("main", error)

    def _main_turn(self) -> None:
        self._act_on_signals()
        self.faults.check("main")
        self._serve_requests()
        if self.clock() >= self._next_reload:
            self._reload_mapping()
            self._next_reload = self.clock() + RELOAD_PERIOD
        self.watchdog.check()
        if self.preview is not None:
            self._update_preview()

    def _act_on_signals(self) -> None:
        flags = self.signals
        if flags.reloads != flags.seen_reloads:
            flags.seen_reloads = flags.reloads
            log.info("SIGHUP: reading the mapping again")
            self._reload_mapping(force=True)
        if flags.stops != flags.seen_stops:
            flags.seen_stops = flags.stops
            log.info("stopping: releasing all notes")
            self.stop.set()

    def _serve_requests(self) -> None:
        """Run what other threads asked for; of several mapping switches queued since the last turn only the
        newest is loaded (each would only replace the one before at the same bar line)."""
        switch: str | None = None
        while True:
            try:
                request = self.requests.get_nowait()
            except queue.Empty:
                break
            if isinstance(request, str):
                switch = request
            else:
                request()
        if switch is not None:
            self._switch_mapping(switch)

    def _shutdown(self, threads: list[threading.Thread]) -> None:
        self.stop.set()
        for thread in threads:  # the player releases every note as it exits
            waited = 0.0
            while thread.is_alive() and waited < JOIN_TIMEOUT and self.signals.stops < FORCE_AFTER_SIGNALS:
                thread.join(timeout=0.05)
                waited += 0.05
        self.close(alive={thread.name for thread in threads if thread.is_alive()})

    def close(self, alive: set[str] = frozenset()) -> None:
        """The notes first, then everything else; *alive*: the threads a forced stop did not wait for."""
        parts = self.parts
        parts.port.panic(set(range(16)) if self.signals.stops >= FORCE_AFTER_SIGNALS else None)
        parts.port.close()
        if parts.clock_in is not None:
            parts.clock_in.close()
        self.fanout.drain()
        self.watchdog.check()  # the last failures, logged
        self._close_preview()
        if "perception" not in alive:
            self.perceiver.close()
        # else the source is left to the exit: releasing a capture that a thread still reads from may crash
        # in the decoder (one SIGABRT in 1,000 stop bursts, when this came before the notes' release)
        if parts.recorder is not None:
            parts.recorder.close()
            # a take with a gap (a deleted folder, a full disk) says so where a warning is seen
            (log.info if parts.recorder.complete else log.warning)("recorded %s", parts.recorder.describe())
        self.fanout.close()

    # --- the preview window (main thread: GUI calls must stay on it) -----------
    def _update_preview(self) -> None:
        """Draw the latest picture with the bar now playing; the user closing the window closes it alone."""
        frame = self.perceiver.preview_frame
        latest = self.perceiver.latest
        if frame is None or latest.time - frame.state.time > PREVIEW_STALE:
            # No picture yet, or the source is gone and is being retried: a blank one with the fading emotion.
            frame = PreviewFrame(BLANK_PICTURE, (), latest)
        bar = self.player.current
        if not self.preview.show(render(frame, bar.params if bar is not None else None)):
            log.info("preview window closed; the music plays on (Ctrl-C or SIGTERM stops it)")
            self._close_preview()

    def _close_preview(self) -> None:
        if self.preview is not None:
            self.perceiver.stop_preview()  # perception stops building preview frames
            self.preview.close()
            self.preview = None

    # --- mapping: hot reload and switching (main thread) -----------------------
    def _reload_mapping(self, force: bool = False) -> None:
        """Apply a saved (or, on SIGHUP, any) change of the mapping file from the next bar; keep playing on errors."""
        if self.watcher is None:
            return
        if not os.path.lexists(self.watcher.path):  # a broken link or a loop is the watcher's to name
            if not self.mapping_missing:
                self.mapping_missing = True
                log.warning("mapping file %s is missing (deleted?); the previous mapping keeps playing", self.watcher.path)
            return
        self.mapping_missing = False
        try:
            mapping = self.parts.load_mapping(self.watcher.spec) if force else self.watcher.poll()
        except MappingError as error:
            log.error("mapping not reloaded, the previous one keeps playing: %s", error)
            return
        if mapping is not None:
            self._apply_mapping(mapping)

    def _switch_mapping(self, name_or_path: str) -> None:
        try:
            mapping = self.parts.load_mapping(name_or_path)
        except MappingError as error:
            self.warn_switch("mapping not switched: %s", error)
            return
        self.watcher = MappingWatcher(name_or_path)
        self._apply_mapping(mapping)

    def _with_overrides(self, mapping: Mapping) -> Mapping:
        """The mapping as the command line amends it: ``--faces`` decides which faces count *and* whether
        they get voices, exactly as ``faces.follow`` in the file would."""
        tempo = "lead" if self.parts.master is None else "follow"  # how the show started decides, not a reload
        if mapping.tempo != tempo:
            mapping = dataclasses.replace(mapping, tempo=tempo)
        if self.config.faces is None or self.config.faces == mapping.faces.follow:
            return mapping
        return dataclasses.replace(mapping, faces=dataclasses.replace(mapping.faces, follow=self.config.faces))

    def _apply_mapping(self, mapping: Mapping) -> None:
        """Hand *mapping* to each owner: the conductor (next bar), perception (next frame), the outputs."""
        mapping = self._with_overrides(mapping)
        if mapping.osc != self.mapping.osc or mapping.daw != self.mapping.daw:
            targets = list(self.parts.cli_targets) + list(mapping.osc)
            self.fanout.replace_osc(self.parts.make_osc(targets, daw=mapping.daw))
        self.mapping = mapping
        self.conductor.request_mapping(mapping)
        self.perceiver.request_mapping(mapping)
        log.info("mapping %s loaded; it plays from the next bar", mapping.source)

    # --- the control surface (emobridge.live.control.ControlHandler): requests only ----
    def pause(self) -> None:
        self.player.paused = True

    def resume(self) -> None:
        self.player.paused = False

    def force_emotion(self, name: str | None) -> None:
        if name is not None and name not in EMOTIONS:
            raise ValueError(f"unknown emotion {name!r}")
        self.forced = None if name is None else EmotionState.fixed(name, self.clock())
        self.fanout.forced(name)  # OSC says what the music plays, and the recording's log marks it

    def set_mapping(self, name_or_path: str) -> None:
        self.requests.put(name_or_path)

    def set_volume(self, scale: float) -> None:
        self.player.velocity_scale = max(0.0, min(2.0, scale))

    def calibrate(self, seconds: float) -> None:
        """Take the next *seconds* of the face as the resting face; the perception thread fits and applies it."""
        self.perceiver.perception.request_calibration(seconds, self._calibrated)

    def _calibrated(self, profile: Profile | None, problem: str | None) -> None:
        """On the perception thread when a recalibration ends: log it; the main thread saves the file."""
        if profile is None:
            log.warning("recalibration failed, the previous profile stays in use: %s", problem)
            return
        log.info("recalibrated: the resting face reads neutral %.0f%% → %.0f%% (%d frames)",
                 100 * profile.neutral_before, 100 * profile.neutral_after, profile.frames)
        path = self.perceiver.settings.profile
        if path:
            self.requests.put(functools.partial(self._save_profile, profile, path))

    def _save_profile(self, profile: Profile, path: str) -> None:
        try:
            profile.save(path)
            log.info("profile saved to %s", path)
        except ProfileError as error:
            log.error("%s; the new profile is in use until the daemon stops", error)

    def panic(self) -> None:
        self.parts.port.panic(set(range(16)))  # the port is thread-safe, and a panic cannot wait for a bar
        self.perceiver.request_controls_reset()
