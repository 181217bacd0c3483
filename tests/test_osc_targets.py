"""OSC target presets at a real python-osc UDP listener; the --osc and YAML forms of a target."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
import yaml
from osc_listener import OscListener

from emobridge.labels import EMOTIONS
from emobridge.errors import MappingError, OscTargetError
from emobridge.mapping.osc_targets import OscTargetSpec, parse_target, targets_from_yaml
from emobridge.outputs.osc import OscSender
from emobridge.state import EmotionState


@pytest.fixture
def listener():
    server = OscListener()
    yield server
    server.close()


def state(label: str = "happy") -> EmotionState:
    probs = np.full(len(EMOTIONS), 0.02)
    probs[EMOTIONS.index(label)] = 1 - 0.02 * (len(EMOTIONS) - 1)
    return EmotionState(probs=probs, label=label, confidence=float(probs.max()), valence=0.7, arousal=0.4,
                        face=True, time=0.0)


def test_abletonosc_gets_only_the_tempo_on_change(listener):
    sender = OscSender([OscTargetSpec("127.0.0.1", listener.port, "abletonosc")])
    sender.send_emotion(state())
    sender.send_music(120.0, "major", 0.5, bar_start=True)
    sender.send_music(120.0, "major", 0.6, bar_start=True)  # same tempo: nothing
    sender.send_music(96.5, "minor", 0.6, bar_start=True)
    listener.wait_for("/live/song/set/tempo")
    time.sleep(0.2)
    sender.close()
    assert listener.received("/live/song/set/tempo") == [(120.0,), (96.5,)]
    assert {address for address, _ in listener.messages} == {"/live/song/set/tempo"}


def test_reaper_gets_tempo_raw(listener):
    sender = OscSender([parse_target(f"127.0.0.1:{listener.port}=reaper")])
    for tempo in (100.0, 100.001, 132.25):
        sender.send_music(tempo, "dorian", 0.3, bar_start=True)
        sender.send_emotion(state("sad"))
    time.sleep(0.2)
    listener.wait_for("/tempo/raw")
    sender.close()
    assert listener.received("/tempo/raw") == [(100.0,), (132.25,)]
    assert {address for address, _ in listener.messages} == {"/tempo/raw"}


def test_emobridge_preset_is_the_osc_table_and_can_be_narrowed():
    full, narrow = OscListener(), OscListener()
    try:
        sender = OscSender([parse_target(full.target),
                            parse_target(f"{narrow.target}=emobridge:tempo,valence")], prefix="/show")
        sender.send_emotion(state("happy"))
        sender.send_music(110.0, "lydian", 0.75, bar_start=True)
        full.wait_for("/show/density")
        narrow.wait_for("/show/tempo")
        time.sleep(0.2)
        sender.close()
        assert full.received("/show/emotion")[0][0] == "happy"
        assert len(full.received("/show/probs")[0]) == len(EMOTIONS)
        assert full.received("/show/face") == [(1,)]
        assert full.received("/show/tempo") == [(110.0,)]
        assert full.received("/show/mode") == [("lydian",)]
        assert {address for address, _ in narrow.messages} == {"/show/tempo", "/show/valence"}
        assert narrow.received("/show/valence")[0][0] == pytest.approx(0.7)
    finally:
        full.close()
        narrow.close()


def test_several_presets_at_once(listener):
    other = OscListener()
    try:
        sender = OscSender([OscTargetSpec("127.0.0.1", listener.port, "abletonosc"),
                            OscTargetSpec("127.0.0.1", other.port, "reaper")])
        sender.send_music(88.0, "minor", 0.2, bar_start=True)
        assert listener.wait_for("/live/song/set/tempo") == [(88.0,)]
        assert other.wait_for("/tempo/raw") == [(88.0,)]
        sender.close()
    finally:
        other.close()


def test_sends_never_raise(listener, caplog):
    sender = OscSender([OscTargetSpec("127.0.0.1", listener.port, "reaper"), OscTargetSpec("127.0.0.1", listener.port)],
                       error_interval=60.0)
    with caplog.at_level(logging.WARNING, logger="emobridge.outputs.osc"):
        sender.send_emotion(None)  # even nonsense is logged, not raised
        sender.send_faces([None])
        sender.send_music(None, "major", 0.5, bar_start=True)
        sender.send_music(100.0, "major", 0.5, bar_start=True)  # and the next sends still go out
        assert listener.wait_for("/tempo/raw") == [(100.0,)]
        sender.close()
        sender.send_music(10.0, "major", 0.5, bar_start=True)  # closed: dropped quietly
    assert len(caplog.records) == 1 and "sending the emotion failed" in caplog.records[0].getMessage()


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:9000", OscTargetSpec("127.0.0.1", 9000)),
    ("localhost:9000=emobridge", OscTargetSpec("localhost", 9000)),
    ("127.0.0.1:11001=abletonosc", OscTargetSpec("127.0.0.1", 11001, "abletonosc")),
    ("=abletonosc", OscTargetSpec("127.0.0.1", 11000, "abletonosc")),
    ("127.0.0.1=reaper", OscTargetSpec("127.0.0.1", 8000, "reaper")),
    ("127.0.0.1:8000=REAPER:tempo", OscTargetSpec("127.0.0.1", 8000, "reaper", frozenset({"tempo"}))),
    ("[::1]:9000", OscTargetSpec("::1", 9000)),
    ("127.0.0.1:9000=emobridge:tempo, mode", OscTargetSpec("127.0.0.1", 9000, "emobridge", frozenset({"tempo", "mode"}))),
])
def test_parse_target(text, expected):
    spec = parse_target(text)
    assert spec == expected
    assert parse_target(spec.describe()) == spec


@pytest.mark.parametrize("text, message", [
    ("127.0.0.1", "has no port"),
    ("9000", "has no port"),
    ("localhost", "has no port"),
    ("host:port", "port 'port' is not a number from 1 to 65535"),
    ("127.0.0.1:0", "not a number from 1 to 65535"),
    ("127.0.0.1:70000", "not a number from 1 to 65535"),
    ("127.0.0.1:abc", "not a number from 1 to 65535"),
    ("127.0.0.1:9000=bitwig", "unknown preset 'bitwig': use one of emobridge, abletonosc, reaper"),
    ("127.0.0.1:9000=abletonosc:mode", "has no message mode: choose from tempo"),
    ("127.0.0.1:9000=emobridge:colour", "has no message colour"),
    ("::1:9000", "IPv6 address in brackets"),
    ("no-such-host.invalid:9000", "does not resolve"),
])
def test_parse_target_errors(text, message):
    with pytest.raises(OscTargetError, match=message.replace("(", r"\(")) as caught:
        parse_target(text)
    assert str(caught.value).startswith(f"OSC target {text!r}: ") and "\n" not in str(caught.value)


@pytest.mark.parametrize("fields, message", [
    (("127.0.0.1", 0), "port 0 is not a number from 1 to 65535"),
    (("127.0.0.1", True), "port True is not"),
    (("", 9000), "host '' is not a host name"),
    (("127.0.0.1", 9000, "cubase"), "unknown preset 'cubase'"),
    (("127.0.0.1", 9000, "reaper", frozenset()), "preset reaper has no message \\(none given\\)"),
])
def test_a_spec_checks_its_fields_however_it_is_made(fields, message):
    with pytest.raises(OscTargetError, match=message):
        OscTargetSpec(*fields)


def test_resolving_is_asked_for():
    assert parse_target("no-such-host.invalid:9000", resolve=False) == OscTargetSpec("no-such-host.invalid", 9000)
    assert targets_from_yaml([{"host": "no-such-host.invalid", "port": 9000}], "my.yaml", resolve=False) == [
        OscTargetSpec("no-such-host.invalid", 9000)]


def test_targets_from_yaml():
    value = yaml.safe_load("""
    - {preset: abletonosc}
    - {host: 127.0.0.1, port: 8001, preset: reaper}
    - {port: 9000, messages: [valence, arousal]}
    - "127.0.0.1:9001"
    """)
    assert targets_from_yaml(value, "my.yaml") == [
        OscTargetSpec("127.0.0.1", 11000, "abletonosc"),
        OscTargetSpec("127.0.0.1", 8001, "reaper"),
        OscTargetSpec("127.0.0.1", 9000, "emobridge", frozenset({"valence", "arousal"})),
        OscTargetSpec("127.0.0.1", 9001),
    ]
    assert targets_from_yaml(None, "my.yaml") == []


@pytest.mark.parametrize("value, path, problem", [
    ({"preset": "reaper"}, "osc", "expected a list"),
    ([42], "osc[0]", "expected a string or a table"),
    ([{"port": 9000, "colour": "red"}], "osc[0].colour", "unknown key"),
    ([{"preset": "cubase", "port": 1}], "osc[0].preset", "unknown preset 'cubase'"),
    ([{"host": "127.0.0.1"}], "osc[0].port", "missing"),
    ([{"port": 0}], "osc[0].port", "port 0 is not a number from 1 to 65535"),
    ([{"port": "9000"}], "osc[0].port", "port '9000' is not"),
    ([{"port": 9000, "messages": "tempo"}], "osc[0].messages", "got 'tempo'"),
    ([{"preset": "abletonosc", "messages": ["mode"]}], "osc[0].messages", "preset abletonosc has no message mode"),
    ([{"host": "", "port": 9000}], "osc[0].host", "host '' is not"),
    ([{"host": "no-such-host.invalid", "port": 9000}], "osc[0].host", "does not resolve"),
    (["no-such-host.invalid:9000"], "osc[0]", "does not resolve"),
    (["{bad}:x"], "osc[0]", "not a number from 1 to 65535"),
])
def test_targets_from_yaml_errors(value, path, problem):
    with pytest.raises(MappingError) as caught:
        targets_from_yaml(value, "my.yaml")
    assert caught.value.source == "my.yaml"
    assert caught.value.path == path
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"my.yaml: {path}: ")
