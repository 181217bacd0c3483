"""The mapping's daw: at real python-osc UDP servers standing in for AbletonOSC and Reaper, checked against
their published address tables; emotion-matched launching fires the nearest scene and does not flap."""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time

import pytest
from osc_listener import OscListener

from emobridge.errors import MappingError
from emobridge.live.fanout import BarStarted, Fanout
from emobridge.mapping import parse_mapping
from emobridge.mapping.osc_targets import OscTargetSpec
from emobridge.music.composer import Composer
from emobridge.outputs.daw import DawTable, similarity
from emobridge.outputs.osc import OscSender
from emobridge.state import EmotionState

# What each DAW understands, with the OSC type of each argument, as published:
# AbletonOSC's README (github.com/ideoforms/AbletonOSC: song, scene, clip_slot, track and device tables; root_note
# and scale_name are Song properties it lists as read/write, so /live/song/set/<property> exists for them).
LIVE_TABLE = {
    "/live/song/start_playing": "", "/live/song/stop_playing": "", "/live/song/continue_playing": "",
    "/live/song/set/tempo": "f", "/live/song/set/root_note": "i", "/live/song/set/scale_name": "s",
    "/live/scene/fire": "i", "/live/clip_slot/fire": "ii", "/live/track/set/volume": "if",
    "/live/track/set/send": "iif", "/live/device/set/parameter/value": "iiif",
}
# Reaper's Default.ReaperOSC patterns (type letter / pattern, @ a number): t = trigger, n = normalised float,
# i = integer, f = float.
REAPER_TABLE = {
    "t/play": "f", "t/stop": "f", "f/tempo/raw": "f", "i/region": "i", "i/action": "i",
    "n/track/@/volume": "f", "n/track/@/send/@/volume": "f", "n/track/@/fx/@/fxparam/@/value": "f",
}

DAW = """
daw:
  transport: true
  key: true
  markers: true
  hysteresis: 0.1
  launch:
    - {emotion: happy, scene: 1, region: 1}
    - {emotion: sad, scene: 2, region: 2}
    - {valence: -0.6, arousal: 0.6, track: 3, clip: 2, region: 3}
  params:
    - {source: arousal, target: volume, track: 2, out: [0.5, 0.9]}
    - {source: valence, target: send, track: 1, send: 2}
    - {source: arousal, target: device, track: 1, device: 2, parameter: 4}
"""


def types_of(args: tuple) -> str:
    return "".join({int: "i", float: "f", str: "s"}[type(a)] for a in args)


def in_reaper_table(address: str, args: tuple) -> bool:
    for pattern, types in REAPER_TABLE.items():
        regex = re.escape(pattern[1:]).replace("@", r"\d+")
        if re.fullmatch(regex, address) and types_of(args) == types:
            return True
    return False


def settle(*listeners: OscListener, quiet: float = 0.2) -> None:
    last = -1
    while True:
        count = sum(len(listener.messages) for listener in listeners)
        if count == last:
            return
        last = count
        time.sleep(quiet)


def show(mapping_text: str, states: list[EmotionState]):
    """The outputs of a short show: a bar per state, a frame per state, then the end; returns both listeners."""
    mapping = parse_mapping(mapping_text, "daw.yaml")
    live, reaper = OscListener(), OscListener()
    osc = OscSender([OscTargetSpec("127.0.0.1", live.port, "abletonosc"),
                     OscTargetSpec("127.0.0.1", reaper.port, "reaper")], daw=mapping.daw)
    fanout = Fanout(osc)
    composer = Composer(mapping, seed=1)
    for state in states:
        fanout.emotion(state)
        fanout.bar(BarStarted(composer.next_bar(state, {}), state.time, state))
        fanout.drain()
    fanout.close()
    settle(live, reaper)
    live.close()
    reaper.close()
    return live, reaper


def at(emotion: str, t: float) -> EmotionState:
    return EmotionState.fixed(emotion, t)


def test_every_daw_feature_reaches_live_and_reaper_in_their_published_words():
    states = [at("happy", 1.0), at("happy", 2.0), at("sad", 3.0), at("angry", 4.0)]
    live, reaper = show(DAW, states)
    for address, args in live.messages:
        assert LIVE_TABLE.get(address) == types_of(args), f"AbletonOSC has no {address} {args}"
    for address, args in reaper.messages:
        assert in_reaper_table(address, args), f"Default.ReaperOSC has no {address} {args}"
    got = {address for address, _ in live.messages}
    # transport, key and scale, scene and clip launching, volume, send and device parameters
    addresses = [address for address, _ in live.messages]
    assert addresses.count("/live/song/start_playing") == 1 and addresses[-1] == "/live/song/stop_playing"
    assert addresses.index("/live/song/start_playing") < addresses.index("/live/scene/fire")  # with the first bar
    assert {"/live/song/set/root_note", "/live/song/set/scale_name", "/live/scene/fire", "/live/clip_slot/fire",
            "/live/track/set/volume", "/live/track/set/send", "/live/device/set/parameter/value"} <= got
    assert live.received("/live/scene/fire") == [(0,), (1,)]  # scene 1 for happy, scene 2 for sad (0-based)
    assert live.received("/live/clip_slot/fire") == [(2, 1)]  # angry is nearest the clip's point
    assert live.received("/live/song/set/scale_name")[0] == ("Major",)
    assert live.received("/live/track/set/volume")[0] == (1, pytest.approx(0.5 + 0.4 * (0.51 + 1) / 2))
    # Reaper: regions, a marker at each change of emotion, the same parameters 1-based
    assert reaper.received("/region") == [(1,), (2,), (3,)]
    assert reaper.received("/action") == [(40157,), (40157,)]  # happy → sad, sad → angry
    assert reaper.received("/track/2/volume") and reaper.received("/track/1/send/2/volume")
    assert reaper.received("/track/1/fx/2/fxparam/4/value")
    assert reaper.received("/play") == [(1.0,)] and reaper.messages[-1] == ("/stop", (1.0,))


def test_a_target_that_takes_only_the_tempo_gets_no_daw_messages():
    mapping = parse_mapping(DAW, "daw.yaml")
    live = OscListener()
    try:
        osc = OscSender([OscTargetSpec("127.0.0.1", live.port, "abletonosc", frozenset({"tempo"}))], daw=mapping.daw)
        osc.send_daw_transport(True)
        osc.send_daw_bar(at("sad", 1.0), 0, "minor", "sad", 0)
        osc.send_music(90.0, "minor", 0.5, bar_start=True)
        assert live.wait_for("/live/song/set/tempo") == [(90.0,)]
        time.sleep(0.2)
        assert [address for address, _ in live.messages] == ["/live/song/set/tempo"]
        osc.close()
    finally:
        live.close()


def test_a_follower_never_starts_or_stops_the_daw():
    mapping = parse_mapping(DAW, "daw.yaml")
    live = OscListener()
    try:
        osc = OscSender([OscTargetSpec("127.0.0.1", live.port, "abletonosc")], daw=mapping.daw, drive_tempo=False)
        osc.send_daw_transport(True)
        osc.send_daw_bar(at("sad", 1.0), 0, "minor", "sad", 0)
        assert live.wait_for("/live/scene/fire") == [(1,)]
        time.sleep(0.2)
        assert not live.received("/live/song/start_playing")
        osc.close()
    finally:
        live.close()


def launching(text: str = DAW):
    return DawTable(parse_mapping(text, "daw.yaml").daw)


def test_launching_fires_the_nearest_item_by_cosine_similarity():
    table = launching()
    assert table.choose((0.7, 0.4)).scene == 0      # near happy
    assert table.choose((-0.5, -0.3)).scene == 1    # near sad
    assert table.choose((-0.4, 0.7)).clip == 1      # near the clip's own point
    assert table.choose((0.02, -0.05)) is None      # a neutral face: no direction, nothing fires
    assert similarity((0.81, 0.51), (1.62, 1.02)) == pytest.approx(1.0)  # direction, not distance


def launches_for_a_wavering_face(hysteresis: float) -> int:
    table = launching(DAW.replace("hysteresis: 0.1", f"hysteresis: {hysteresis}"))
    rng = random.Random(3)
    # a face whose direction wavers about the bisector of happy's point (32°) and the clip's (135°)
    angle = (math.atan2(0.51, 0.81) + math.atan2(0.6, -0.6)) / 2
    fired = 0
    for bar in range(200):
        wobble = angle + rng.gauss(0, 0.01)  # a steady (smoothed) face: half a degree either way
        face = dataclasses.replace(at("neutral", bar), valence=0.5 * math.cos(wobble), arousal=0.5 * math.sin(wobble))
        fired += sum(action.kind == "launch" for action in table.bar(face, 0, "major", "neutral", bar % 4))
    return fired


def test_a_steady_face_between_two_items_does_not_flap():
    assert launches_for_a_wavering_face(0.1) == 1
    assert launches_for_a_wavering_face(0.0) > 10  # without hysteresis the same face flaps


def test_launching_waits_for_the_phrase_line_when_asked():
    table = launching(DAW + "  launch_at: phrase\n")
    happy = at("happy", 1.0)
    assert [a.kind for a in table.bar(happy, 0, "major", "happy", 1)].count("launch") == 0
    assert [a.item.scene for a in table.bar(happy, 0, "major", "happy", 0) if a.kind == "launch"] == [0]


@pytest.mark.parametrize("item, problem", [
    ("{scene: 1}", "needs an emotion or both valence and arousal"),
    ("{emotion: sad, valence: 0.1, arousal: 0.2, scene: 1}", "needs an emotion or both"),
    ("{valence: 0.1, scene: 1}", "needs an emotion or both"),
    ("{emotion: sad, track: 1}", "a clip needs both track and clip"),
    ("{emotion: sad}", "fires nothing"),
])
def test_a_launch_item_that_cannot_work_is_a_one_line_error(item, problem):
    with pytest.raises(MappingError, match=problem):
        parse_mapping(f"daw:\n  launch:\n    - {item}\n", "bad.yaml")
