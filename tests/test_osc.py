import pytest

from emobridge.outputs.osc import OscOut, OscTarget
from emobridge.errors import OscTargetError
from emobridge.state import EmotionState
from osc_listener import OscListener


@pytest.fixture
def listener():
    server = OscListener()
    yield server
    server.close()


def test_parse_target():
    assert OscTarget.parse("127.0.0.1:9000") == OscTarget("127.0.0.1", 9000)


@pytest.mark.parametrize("text", ["9000", "localhost", "host:port", "127.0.0.1:0", "127.0.0.1:70000", "no-such-host.invalid:9000"])
def test_bad_targets_are_one_line_errors(text):
    with pytest.raises(OscTargetError) as error:
        OscTarget.parse(text)
    assert "\n" not in str(error.value)


def test_emotion_stream_reaches_a_real_udp_server(listener):
    out = OscOut([OscTarget.parse(listener.target)], prefix="/emobridge")
    out.send_emotion(EmotionState.fixed("happy"))
    assert listener.wait_for("/emobridge/emotion") == [("happy", pytest.approx(1.0))]
    probs = listener.wait_for("/emobridge/probs")[0]
    assert len(probs) == 7 and probs[3] == pytest.approx(1.0)  # angry, disgust, fear, happy, ...
    assert listener.wait_for("/emobridge/valence")[0][0] == pytest.approx(0.81)
    assert listener.wait_for("/emobridge/arousal")[0][0] == pytest.approx(0.51)
    assert listener.wait_for("/emobridge/face") == [(1,)]
    out.close()


def test_face_is_sent_only_when_it_changes_and_emotion_only_with_a_face(listener):
    out = OscOut([OscTarget.parse(listener.target)], prefix="show/")
    lost = EmotionState(EmotionState.neutral().probs, "neutral", 1.0, 0.0, 0.0, False, 0.0)
    for state in [EmotionState.fixed("sad"), EmotionState.fixed("sad"), lost, lost]:
        out.send_emotion(state)
    listener.wait_for("/show/probs")
    import time

    time.sleep(0.2)
    assert listener.received("/show/face") == [(1,), (0,)]
    assert len(listener.received("/show/emotion")) == 2
    assert len(listener.received("/show/probs")) == 4
    out.close()


def test_music_state_on_change_and_every_bar(listener):
    out = OscOut([OscTarget.parse(listener.target)])
    out.send_music(120.0, "major", 0.5, bar_start=True)
    out.send_music(120.0, "major", 0.5, bar_start=False)  # unchanged mid-bar: nothing
    out.send_music(90.0, "minor", 0.25, bar_start=False)  # changed: sent
    out.send_music(90.0, "minor", 0.25, bar_start=True)   # new bar: sent again
    import time

    time.sleep(0.2)
    assert listener.received("/emobridge/tempo") == [(120.0,), (90.0,), (90.0,)]
    assert listener.received("/emobridge/mode") == [("major",), ("minor",), ("minor",)]
    assert listener.received("/emobridge/density") == [(0.5,), (0.25,), (0.25,)]
    out.close()


def test_unreachable_target_does_not_raise():
    out = OscOut([OscTarget("127.0.0.1", 9)])  # discard port: nothing listens, ICMP refusals must be swallowed
    for _ in range(5):
        out.send_emotion(EmotionState.fixed("angry"))
    out.close()
