"""OscSender's address table at a real python-osc UDP server; errors and name lookups."""

from __future__ import annotations

import logging
import socket
import time

import pytest
from osc_listener import OscListener

from emobridge.mapping.osc_targets import OscTargetSpec, parse_target
from emobridge.outputs.osc import OscSender, encode
from emobridge.perception.chain import FaceResult
from emobridge.state import EmotionState


def test_encode_is_one_osc_message():
    from pythonosc.osc_message import OscMessage

    message = OscMessage(encode("/emobridge/voice", 1, "sad", 0.5))
    assert (message.address, message.params) == ("/emobridge/voice", [1, "sad", 0.5])


def test_emotion_stream_reaches_a_real_udp_server(osc):
    out = OscSender([parse_target(osc.target)], prefix="/emobridge")
    out.send_emotion(EmotionState.fixed("happy"))
    assert osc.wait_for("/emobridge/emotion") == [("happy", pytest.approx(1.0))]
    probs = osc.wait_for("/emobridge/probs")[0]
    assert len(probs) == 7 and probs[3] == pytest.approx(1.0)  # angry, disgust, fear, happy, ...
    assert osc.wait_for("/emobridge/valence")[0][0] == pytest.approx(0.81)
    assert osc.wait_for("/emobridge/arousal")[0][0] == pytest.approx(0.51)
    assert osc.wait_for("/emobridge/face") == [(1,)]
    out.close()


def test_face_is_sent_only_when_it_changes_under_any_prefix_spelling(osc):
    out = OscSender([parse_target(osc.target)], prefix="show/")
    lost = EmotionState(EmotionState.neutral().probs, "neutral", 1.0, 0.0, 0.0, False, 0.0)
    for state in [EmotionState.fixed("sad"), EmotionState.fixed("sad"), lost, lost]:
        out.send_emotion(state)
    osc.wait_for("/show/probs")
    time.sleep(0.2)
    assert osc.received("/show/face") == [(1,), (0,)]
    assert len(osc.received("/show/emotion")) == 2
    assert len(osc.received("/show/probs")) == 4
    out.close()


def test_music_state_on_change_and_every_bar(osc):
    out = OscSender([parse_target(osc.target)])
    out.send_music(120.0, "major", 0.5, bar_start=True)
    out.send_music(120.0, "major", 0.5, bar_start=False)  # unchanged mid-bar: nothing
    out.send_music(90.0, "minor", 0.25, bar_start=False)  # changed: sent
    out.send_music(90.0, "minor", 0.25, bar_start=True)   # new bar: sent again
    time.sleep(0.2)
    assert osc.received("/emobridge/tempo") == [(120.0,), (90.0,), (90.0,)]
    assert osc.received("/emobridge/mode") == [("major",), ("minor",), ("minor",)]
    assert osc.received("/emobridge/density") == [(0.5,), (0.25,), (0.25,)]
    out.close()


def test_source_faces_and_voices(osc):
    out = OscSender([parse_target(osc.target)])
    out.send_source(False, "camera 0")
    out.send_faces([FaceResult(id=3, box=None, reading=None, slot=0, state=EmotionState.fixed("fear"))])
    assert osc.wait_for("/emobridge/source") == [(0, "camera 0")]
    assert osc.wait_for("/emobridge/faces") == [(1,)]
    assert osc.wait_for("/emobridge/voice")[0][:2] == (1, "fear")
    out.send_status("perception", False, "perception has processed no frame for 3 s")
    assert osc.wait_for("/emobridge/status") == [("perception", 0, "perception has processed no frame for 3 s")]
    out.close()


def test_a_failing_target_logs_one_limited_warning_and_the_others_still_get_everything(osc, caplog):
    # Linux does not report ICMP refusals on an unconnected UDP socket, so a closed port never fails a send;
    # the broadcast address without SO_BROADCAST fails every one (EACCES).
    failing = OscTargetSpec("255.255.255.255", 9000)
    out = OscSender([failing, parse_target(osc.target)], error_interval=60.0)
    with caplog.at_level(logging.WARNING, logger="emobridge.outputs.osc"):
        for _ in range(20):
            out.send_emotion(EmotionState.fixed("angry"))
    deadline = time.monotonic() + 5.0
    while len(osc.received("/emobridge/probs")) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    out.close()
    assert len(osc.received("/emobridge/probs")) == 20
    assert [record.getMessage() for record in caplog.records] == [
        "OSC to 255.255.255.255:9000 failed ([Errno 13] Permission denied); still trying"]


def test_each_target_is_looked_up_once(osc, monkeypatch):
    # A name only this test knows: were it handed to sendto, the C library's own lookup would fail
    # and nothing would arrive; were it looked up per send, the count would show it.
    real = socket.getaddrinfo
    lookups: dict[tuple, int] = {}  # by (host, port): the listeners' own lookups are not ours

    def counting(host, port, *args, **kwargs):
        lookups[host, port] = lookups.get((host, port), 0) + 1
        return real("127.0.0.1" if host == "osc-test.invalid" else host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    other = OscListener()
    try:
        # as the daemon does: the --osc text is checked (looked up) first, then the sender is built from it
        checked = parse_target(f"osc-test.invalid:{osc.port}")
        out = OscSender([checked, OscTargetSpec("127.0.0.1", other.port, "reaper")])
        for i in range(50):
            out.send_emotion(EmotionState.fixed("happy"))
            out.send_music(100.0 + i, "major", 0.5, bar_start=True)
        assert len(osc.wait_for("/emobridge/tempo")) >= 1
        assert len(other.wait_for("/tempo/raw")) >= 1
        out.close()
    finally:
        other.close()
    ours = {("osc-test.invalid", osc.port), ("127.0.0.1", other.port)}
    assert {key: count for key, count in lookups.items() if key in ours} == dict.fromkeys(ours, 1)


def test_a_target_that_does_not_resolve_is_refused_at_construction():
    from emobridge.errors import OscTargetError

    with pytest.raises(OscTargetError, match="no-such-host.invalid:9000.*does not resolve"):
        OscSender([OscTargetSpec("no-such-host.invalid", 9000)])


def test_describe_and_no_targets():
    assert OscSender([]).describe() == "none"
    out = OscSender([OscTargetSpec("127.0.0.1", 9000), OscTargetSpec("::1", 8000, "reaper")])
    assert out.describe() == "127.0.0.1:9000, [::1]:8000=reaper"
    assert {spec.port for spec in out.targets} == {9000, 8000}
    assert set(out.sockets) == {socket.AF_INET, socket.AF_INET6}  # one socket per address family
    out.close()
    out.send_emotion(EmotionState.fixed("happy"))  # closed: nothing, not an error


def test_forced_emotion_is_sent_and_released(osc):
    out = OscSender([parse_target(osc.target)])
    out.send_forced("sad")
    out.send_forced(None)
    deadline = time.monotonic() + 5
    while len(osc.received("/emobridge/forced")) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert osc.received("/emobridge/forced") == [("sad",), ("",)]
    out.close()


def test_a_target_given_twice_gets_a_warning_and_each_message_once(osc, caplog):
    with caplog.at_level(logging.WARNING, logger="emobridge.outputs.osc"):
        out = OscSender([parse_target(osc.target), parse_target(f"127.0.0.1:{osc.port}=emobridge:tempo")])
    assert [r.getMessage() for r in caplog.records] == [
        f"OSC target 127.0.0.1:{osc.port}=emobridge:tempo is given twice (on the command line and in the mapping, "
        "or twice in one of them): it gets each message once"]
    assert len(out.routes) == 1 and out.describe() == osc.target
    for _ in range(3):
        out.send_emotion(EmotionState.fixed("happy"))
    out.send_music(100.0, "major", 0.5, bar_start=True)
    osc.wait_for("/emobridge/tempo")
    time.sleep(0.2)
    assert len(osc.received("/emobridge/probs")) == 3 and osc.received("/emobridge/tempo") == [(100.0,)]
    out.close()
