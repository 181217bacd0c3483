"""Driving the DAW beyond tempo (the mapping's ``daw:``): what to say when, and how Live and Reaper spell it.

:class:`DawTable` decides, without sockets, what the show asks of the DAW — start and stop the
transport, follow the music's key, fire the scene nearest to the face, drop a marker where the emotion
changes, move mixer and device parameters — as preset-free :class:`DawAction`. :func:`spell` writes
an action in the words of one OSC preset, checked against the published address tables:

    action       abletonosc (AbletonOSC, 0-based ids)            reaper (Default.ReaperOSC, 1-based)
    start        /live/song/start_playing                        /play f 1 (t/play)
    stop         /live/song/stop_playing                         /stop f 1 (t/stop)
    key          /live/song/set/root_note i, .../scale_name s    (none: Reaper has no song key)
    launch       /live/scene/fire i scene                        /region i number (GOTO_REGION i/region)
                 /live/clip_slot/fire i track, i clip
    marker       (none)                                          /action i 40157 (Markers: Insert marker
                                                                 at current position; OSC cannot name it)
    volume       /live/track/set/volume i track, f 0..1          /track/@/volume f 0..1 (TRACK_VOLUME n/...)
    send         /live/track/set/send i track, i send, f 0..1    /track/@/send/@/volume f 0..1
    device       /live/device/set/parameter/value                /track/@/fx/@/fxparam/@/value f 0..1
                 i track, i device, i parameter, f value         (FX_PARAM_VALUE n/track/@/fx/@/fxparam/@/value)

Emotion-matched launching: each ``daw.launch`` item stands for a valence/arousal point (its emotion's,
or its own); at each bar (or phrase) line the item whose point is nearest in direction to the face's
smoothed valence/arousal (cosine similarity) fires, if it is not the one already playing and leads it
by ``hysteresis``, so a steady face never flaps between two items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..labels import VALENCE_AROUSAL
from ..mapping.model import DawConfig, DawParam, LaunchItem
from ..music.controls import source_value
from ..state import EmotionState

NEUTRAL_RADIUS = 0.15  # valence/arousal length below which a face counts as neutral (no direction to compare)
PARAM_STEP = 0.005     # a parameter moves at least this much (of 0..1) before it is sent again
MARKER_ACTION = 40157  # Reaper's "Markers: Insert marker at current position"


@dataclass(frozen=True)
class DawAction:
    """One thing the show asks of the DAW, before any preset spells it."""

    kind: str                        # start, stop, key, launch, marker, param
    item: LaunchItem | None = None   # launch
    param: DawParam | None = None    # param
    value: float = 0.0               # param: 0..1
    tonic: int = 0                   # key: pitch class
    mode: str = ""                   # key: a name in theory.MODES
    label: str = ""                  # marker: the emotion the music changed to


def item_point(item: LaunchItem) -> tuple[float, float]:
    if item.emotion is not None:
        return VALENCE_AROUSAL[item.emotion]
    assert item.valence is not None and item.arousal is not None
    return item.valence, item.arousal


def similarity(item: tuple[float, float], face: tuple[float, float]) -> float:
    """Cosine similarity of two valence/arousal points; a neutral face matches only a neutral item."""
    item_norm, face_norm = math.hypot(*item), math.hypot(*face)
    if face_norm < NEUTRAL_RADIUS or item_norm < NEUTRAL_RADIUS:
        return 1.0 if face_norm < NEUTRAL_RADIUS and item_norm < NEUTRAL_RADIUS else 0.0
    return (item[0] * face[0] + item[1] * face[1]) / (item_norm * face_norm)


class DawTable:
    """What to ask of the DAW when (pure: time and state are passed in)."""

    def __init__(self, config: DawConfig):
        self.config = config
        self.playing: LaunchItem | None = None  # the launch item fired last
        self._key: tuple[int, str] | None = None
        self._emotion: str | None = None
        self._params: dict[int, tuple[float, float]] = {}  # entry → (value sent, when)

    def start(self) -> list[DawAction]:
        return [DawAction("start")] if self.config.transport else []

    def stop(self) -> list[DawAction]:
        return [DawAction("stop")] if self.config.transport else []

    def bar(self, state: EmotionState, tonic: int, mode: str, emotion: str, phrase_bar: int) -> list[DawAction]:
        """At a bar line: the key on change, a marker where the music's emotion changes, launching at its lines."""
        actions: list[DawAction] = []
        if self.config.key and (tonic, mode) != self._key:
            self._key = (tonic, mode)
            actions.append(DawAction("key", tonic=tonic, mode=mode))
        if self.config.markers and emotion != self._emotion and self._emotion is not None:
            actions.append(DawAction("marker", label=emotion))
        self._emotion = emotion
        if self.config.launch and (self.config.launch_at == "bar" or phrase_bar == 0):
            chosen = self.choose((state.valence, state.arousal))
            if chosen is not None:
                self.playing = chosen
                actions.append(DawAction("launch", item=chosen))
        return actions

    def choose(self, face: tuple[float, float]) -> LaunchItem | None:
        """The item to fire for *face*, or None to leave the one playing (the hysteresis keeps it unless beaten)."""
        scored = [(similarity(item_point(item), face), item) for item in self.config.launch]
        best_score, best = max(scored, key=lambda pair: pair[0])  # the first of equals
        if best is self.playing or best_score <= 0:
            return None
        if self.playing is not None:
            current = similarity(item_point(self.playing), face)
            if best_score < current + self.config.hysteresis:
                return None
        return best

    def frame(self, state: EmotionState, now: float) -> list[DawAction]:
        """A processed frame: every ``daw.params`` entry that moved enough and is allowed by its rate."""
        actions = []
        for index, param in enumerate(self.config.params):
            value = param_value(param, source_value(param.source, state, None))
            last = self._params.get(index)
            if last is not None and (abs(value - last[0]) < PARAM_STEP or now - last[1] < 1.0 / param.rate):
                continue
            self._params[index] = (value, now)
            actions.append(DawAction("param", param=param, value=value))
        return actions



def param_value(param: DawParam, value: float) -> float:
    """The 0..1 value an entry sends for a source *value*: range mapped linearly onto out, clamped."""
    low, high = param.range
    fraction = max(0.0, min(1.0, (value - low) / (high - low)))
    return param.out[0] + (param.out[1] - param.out[0]) * fraction


def live_scale(mode: str) -> str:
    """Live 12's name of a scale (Song.scale_name): 'harmonic_minor' → 'Harmonic Minor'."""
    return mode.replace("_", " ").title()


def spell(action: DawAction, preset: str) -> list[tuple[str, tuple[object, ...]]]:
    """*action* as (address, arguments) for an OSC target of *preset*; [] where that DAW has no such thing."""
    if preset == "abletonosc":
        return _live(action)
    if preset == "reaper":
        return _reaper(action)
    return []


def _live(action: DawAction) -> list[tuple[str, tuple[object, ...]]]:
    kind = action.kind
    if kind == "start":
        return [("/live/song/start_playing", ())]
    if kind == "stop":
        return [("/live/song/stop_playing", ())]
    if kind == "key":
        return [("/live/song/set/root_note", (action.tonic,)), ("/live/song/set/scale_name", (live_scale(action.mode),))]
    if kind == "launch" and action.item is not None:
        item = action.item
        if item.scene is not None:
            return [("/live/scene/fire", (item.scene,))]
        if item.clip is not None:
            return [("/live/clip_slot/fire", (item.track, item.clip))]
        return []
    if kind == "param" and action.param is not None:
        param, value = action.param, float(action.value)
        if param.target == "volume":
            return [("/live/track/set/volume", (param.track, value))]
        if param.target == "send":
            return [("/live/track/set/send", (param.track, param.send, value))]
        return [("/live/device/set/parameter/value", (param.track, param.device, param.parameter, value))]
    return []


def _reaper(action: DawAction) -> list[tuple[str, tuple[object, ...]]]:
    kind = action.kind
    if kind == "start":
        return [("/play", (1.0,))]
    if kind == "stop":
        return [("/stop", (1.0,))]
    if kind == "marker":
        return [("/action", (MARKER_ACTION,))]
    if kind == "launch" and action.item is not None and action.item.region is not None:
        return [("/region", (action.item.region,))]
    if kind == "param" and action.param is not None:
        param, value = action.param, float(action.value)
        track = param.track + 1  # Reaper's OSC counts tracks, sends, FX and parameters from 1 (0 is the master)
        if param.target == "volume":
            return [(f"/track/{track}/volume", (value,))]
        if param.target == "send":
            return [(f"/track/{track}/send/{param.send + 1}/volume", (value,))]
        return [(f"/track/{track}/fx/{param.device + 1}/fxparam/{param.parameter + 1}/value", (value,))]
    return []
