import numpy as np
import pytest

from emobridge.labels import EMOTIONS, VALENCE_AROUSAL
from emobridge.perception.smoothing import EmotionSmoother, SmoothingConfig
from emobridge.state import EmotionState, valence_arousal


def one_hot(name: str, p: float = 1.0) -> np.ndarray:
    probs = np.full(len(EMOTIONS), (1 - p) / (len(EMOTIONS) - 1))
    probs[EMOTIONS.index(name)] = p
    return probs


@pytest.mark.parametrize("name", EMOTIONS)
def test_valence_arousal_of_a_pure_emotion_is_its_coordinate(name):
    assert valence_arousal(one_hot(name)) == pytest.approx(VALENCE_AROUSAL[name])


def test_valence_arousal_is_the_probability_weighted_mean():
    probs = np.zeros(7)
    probs[EMOTIONS.index("happy")] = 0.6
    probs[EMOTIONS.index("sad")] = 0.4
    v, a = valence_arousal(probs)
    assert v == pytest.approx(0.6 * 0.81 + 0.4 * -0.63)
    assert a == pytest.approx(0.6 * 0.51 + 0.4 * -0.27)


def feed(smoother, probs, seconds, fps=15, start=0.0):
    state = None
    for i in range(int(seconds * fps)):
        state = smoother.update(probs, start + i / fps)
    return state


def test_follows_a_held_expression():
    state = feed(EmotionSmoother(), one_hot("happy", 0.9), 1.0)
    assert state.label == "happy" and state.face
    assert state.valence > 0.5


def test_single_noisy_frames_do_not_flip_the_label():
    smoother = EmotionSmoother()
    feed(smoother, one_hot("sad", 0.7), 2.0)
    changes, label = 0, "sad"
    for i in range(30 * 15):  # 30 s at 15 fps with a surprise flash every 10th frame
        probs = one_hot("surprise", 0.9) if i % 10 == 0 else one_hot("sad", 0.7)
        state = smoother.update(probs, 2.0 + i / 15)
        changes += state.label != label
        label = state.label
    assert changes == 0


def test_hysteresis_holds_between_close_classes():
    smoother = EmotionSmoother(SmoothingConfig(hysteresis=0.1))
    feed(smoother, one_hot("neutral", 0.5), 2.0)
    near = np.full(7, 0.02)
    near[EMOTIONS.index("neutral")], near[EMOTIONS.index("sad")] = 0.44, 0.46
    assert feed(smoother, near, 2.0, start=2.0).label == "neutral"


def test_no_face_fades_to_neutral():
    smoother = EmotionSmoother(SmoothingConfig(no_face_fade=0.5))
    feed(smoother, one_hot("angry"), 1.0)
    state = feed(smoother, None, 3.0, start=1.0)
    assert not state.face
    assert state.label == "neutral"
    assert state.prob("neutral") > 0.95


def test_no_face_hold_keeps_the_last_emotion():
    smoother = EmotionSmoother(SmoothingConfig(no_face="hold", no_face_fade=0.5))
    before = feed(smoother, one_hot("angry"), 1.0)
    state = feed(smoother, None, 10.0, start=1.0)
    assert not state.face and state.label == "angry"
    assert state.probs == pytest.approx(before.probs) and state.presence == 1.0


def test_no_face_fade_out_holds_the_emotion_and_fades_the_music():
    smoother = EmotionSmoother(SmoothingConfig(no_face="fade_out", no_face_fade=2.0))
    feed(smoother, one_hot("happy"), 1.0)
    half = feed(smoother, None, 1.0, start=1.0)
    assert not half.face and half.label == "happy" and half.presence == pytest.approx(0.5, abs=0.05)
    gone = feed(smoother, None, 2.0, start=2.0)
    assert gone.presence == 0.0 and gone.label == "happy"
    back = feed(smoother, one_hot("happy"), 0.25, start=4.0)
    assert back.face and 0.3 < back.presence < 0.7  # coming back, not at once to full level
    assert feed(smoother, one_hot("happy"), 0.5, start=4.25).presence == 1.0


def test_a_fading_state_says_how_fast_so_the_fade_goes_on_between_frames():
    smoother = EmotionSmoother(SmoothingConfig(no_face="fade_out", no_face_fade=2.0))
    steady = feed(smoother, one_hot("happy"), 1.0)
    assert steady.presence_rate == 0.0 and steady.presence_at(steady.time + 5) == 1.0
    fading = feed(smoother, None, 0.5, start=1.0)
    assert fading.presence_rate == pytest.approx(-0.5)
    assert fading.presence_at(fading.time + 1.0) == pytest.approx(fading.presence - 0.5)
    assert fading.presence_at(fading.time + 10.0) == 0.0  # clamped, never below silence
    assert fading.presence_at(fading.time - 1.0) == fading.presence  # never ahead of itself
    gone = feed(smoother, None, 3.0, start=1.5)
    assert gone.presence == 0.0 and gone.presence_rate == 0.0
    back = feed(smoother, one_hot("happy"), 0.1, start=4.5)
    assert back.presence_rate > 0 and back.presence_at(back.time + 1.0) == 1.0


def test_other_policies_keep_the_music_at_full_level():
    for policy in ("neutral", "hold"):
        smoother = EmotionSmoother(SmoothingConfig(no_face=policy, no_face_fade=0.5))
        assert feed(smoother, None, 3.0).presence == 1.0


def test_unknown_no_face_policy_is_refused():
    with pytest.raises(ValueError, match="no_face"):
        SmoothingConfig(no_face="pause")


def test_fixed_state():
    state = EmotionState.fixed("fear")
    assert state.label == "fear" and state.confidence == 1.0
    assert (state.valence, state.arousal) == VALENCE_AROUSAL["fear"]


# --- steadier label: confirm, min_hold; the smoothing: section of a mapping ----------------------

def test_a_challenger_must_lead_for_confirm_seconds():
    smoother = EmotionSmoother(SmoothingConfig(attack=0, release=0, hysteresis=0.1, confirm=0.2, min_hold=0))
    feed(smoother, one_hot("sad", 0.9), 1.0)
    assert smoother.update(one_hot("happy", 0.9), 1.0).label == "sad"  # leads, not for long enough
    assert smoother.update(one_hot("happy", 0.9), 1.1).label == "sad"
    assert smoother.update(one_hot("happy", 0.9), 1.2).label == "happy"


def test_min_hold_keeps_a_new_label_for_a_while():
    smoother = EmotionSmoother(SmoothingConfig(attack=0, release=0, hysteresis=0.1, confirm=0, min_hold=1.0))
    feed(smoother, one_hot("sad", 0.9), 1.0)
    assert smoother.update(one_hot("happy", 0.9), 2.0).label == "happy"
    assert smoother.update(one_hot("sad", 0.9), 2.5).label == "happy"  # held
    assert smoother.update(one_hot("sad", 0.9), 3.0).label == "sad"


def test_default_follows_a_clear_change_within_half_a_second():
    for fps in (15, 30):
        smoother = EmotionSmoother()
        feed(smoother, one_hot("sad", 0.8), 3.0, fps=fps)
        t = 3.0
        while smoother.update(one_hot("happy", 0.8), t).label != "happy":
            t += 1 / fps
        assert t - 3.0 <= 0.5


def test_reset_goes_back_to_neutral():
    smoother = EmotionSmoother()
    feed(smoother, one_hot("angry"), 1.0)
    smoother.reset()
    assert smoother.label == EMOTIONS.index("neutral") and smoother.last_time is None


def test_smoothing_config_rejects_nonsense():
    with pytest.raises(ValueError):
        SmoothingConfig(attack=-1)
    with pytest.raises(ValueError):
        SmoothingConfig(hysteresis=1.5)


def test_default_mapping_smoothing_is_the_documented_default():
    from emobridge.mapping import load_mapping

    assert load_mapping().smoothing == SmoothingConfig()


def test_mapping_smoothing_keys_override_and_merge():
    from emobridge.mapping import parse_mapping

    mapping = parse_mapping("smoothing:\n  attack: 0.3\n  min_hold: 2\n", "mine.yaml")
    assert mapping.smoothing.attack == 0.3 and mapping.smoothing.min_hold == 2.0
    assert mapping.smoothing.release == SmoothingConfig().release


@pytest.mark.parametrize("text, path", [
    ("smoothing:\n  attack: -0.1\n", "smoothing.attack"),
    ("smoothing:\n  hysteresis: 0.9\n", "smoothing.hysteresis"),
    ("smoothing:\n  confirm: fast\n", "smoothing.confirm"),
    ("smoothing:\n  no_face_fade: true\n", "smoothing.no_face_fade"),
    ("smoothing:\n  no_face: silence\n", "smoothing.no_face"),
    ("smoothing:\n  attak: 0.1\n", "smoothing.attak"),
    ("smoothing: 3\n", "smoothing"),
])
def test_bad_smoothing_values_name_the_key(text, path):
    from emobridge.errors import MappingError
    from emobridge.mapping import parse_mapping

    with pytest.raises(MappingError) as err:
        parse_mapping(text, "bad.yaml")
    assert err.value.path == path
    assert str(err.value).startswith(f"bad.yaml: {path}: ")


def test_describe_mapping_round_trips_smoothing():
    from emobridge.mapping import describe_mapping, parse_mapping

    mapping = parse_mapping("smoothing:\n  hysteresis: 0.2\n", "mine.yaml")
    again = parse_mapping(describe_mapping(mapping), "described.yaml")
    assert again.smoothing == mapping.smoothing
