"""The JACK tests' own measures (tests/jack.py): what they report must be what happened on JACK."""

from __future__ import annotations

import pytest

from jack import ClockSpacing, Received, tempo_gap, wall_times


def test_the_tempo_of_a_pulse_train_is_not_one_late_pulse_at_its_edge():
    gap = 0.02
    steady = [i * gap for i in range(200)]
    late_first = [steady[0] + 0.06, *steady[1:]]  # the player held up 60 ms as the window opened
    assert tempo_gap(steady) == pytest.approx(gap)
    assert (late_first[-1] - late_first[0]) / 199 < 0.985 * gap  # first to last: 1.5% fast
    assert tempo_gap(late_first) == pytest.approx(gap, rel=0.001)
    assert ClockSpacing.of(late_first, gap).steady(gap, max_error=0.005, min_pulses=100)


def test_a_train_at_another_tempo_is_not_steady():
    fast = [i * 0.0196 for i in range(200)]  # 2% fast
    assert tempo_gap(fast) == pytest.approx(0.0196)
    assert not ClockSpacing.of(fast, 0.02).steady(0.02, max_error=0.005, min_pulses=100)


def test_wall_times_take_the_promptest_reading_near_each_message():
    # JACK's clock runs 1000 s behind the wall clock; readings come 0-40 ms late, one of them at once each second
    jack = [i * 0.05 for i in range(100)]
    late = [0.0 if i % 20 == 7 else 0.04 * ((i * 7) % 10) / 10 for i in range(100)]
    messages = [Received(1000 + t + d, (0xF8,), t) for t, d in zip(jack, late)]
    assert wall_times(messages) == pytest.approx([1000 + t for t in jack])


def test_wall_times_follow_a_slow_drift_between_the_clocks():
    # the dummy driver's frames lose 0.1%: across 100 s that is 100 ms, which one offset for all would keep
    jack = [i * 0.5 for i in range(200)]
    messages = [Received(t * 1.001, (0xF8,), t) for t in jack]
    assert max(abs(w - t * 1.001) for w, t in zip(wall_times(messages), jack)) < 0.002
