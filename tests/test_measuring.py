"""The JACK tests' own measures (tests/jack_rig.py): what they report must be what happened on JACK."""

from __future__ import annotations

import pytest

from jack_rig import ClockSpacing, Received, ServerTrouble, Takes, tempo_gap, wall_times


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


class ScriptedWatch:
    """A JACK server whose troubles in each take are given: the first take gets the first, and so on."""

    def __init__(self, troubles: list[ServerTrouble]):
        self.troubles = list(troubles)

    def mark(self) -> tuple[int, float]:
        return 0, 0.0

    def trouble(self, mark, start: float, end: float) -> ServerTrouble:
        return self.troubles.pop(0)


CALM = ServerTrouble(0, 0.0, 3.0)
XRUN = ServerTrouble(2, 0.0, 3.0)


def run_takes(takes: Takes, passes: list[bool]) -> int:
    """Takes until one passes (by *passes*, in order); how many were played."""
    played = 0
    for take in takes:
        played += 1
        if passes[played - 1]:
            return played
        take.failed(f"take {played} failed")
    return played


def test_a_server_that_lost_a_cycle_or_its_clock_is_trouble_and_a_calm_one_is_not():
    assert not CALM and XRUN
    assert ServerTrouble(0, 0.010, 3.0)  # 10 ms behind in 3 s: the driver dropped late cycles' time
    assert not ServerTrouble(0, 0.002, 3.0)  # 2 ms: within what an unhurt dummy driver drifts
    assert "2 xruns" in str(XRUN)


def test_takes_retake_what_the_server_disturbed_and_stop_at_the_clean_failures():
    takes = Takes(ScriptedWatch([XRUN, CALM, XRUN, CALM, CALM]), clean=3)
    assert run_takes(takes, [False] * 6) == 5  # three clean failures, two disturbed takes beside them
    report = takes.report("no good take")
    assert report.startswith("no good take in 3 takes JACK left alone: take 2 failed; take 4 failed; take 5 failed")
    assert "in 2 it disturbed: take 1 failed (JACK reported 2 xruns" in report


def test_a_clean_take_that_passes_ends_the_takes():
    takes = Takes(ScriptedWatch([XRUN, XRUN]), clean=1)
    assert run_takes(takes, [False, False, True]) == 3


def test_one_clean_failure_is_enough_where_every_take_must_be_right():
    takes = Takes(ScriptedWatch([XRUN, CALM, CALM]), clean=1)
    assert run_takes(takes, [False] * 3) == 2


def test_a_server_that_loses_cycles_in_every_take_fails_the_check_and_says_so():
    takes = Takes(ScriptedWatch([XRUN] * 4), clean=3, most=4)
    assert run_takes(takes, [False] * 4) == 4
    assert takes.report("no good take").startswith("no good take: JACK itself lost cycles in all 4 takes")


def test_a_take_that_neither_passes_nor_says_why_is_a_broken_test():
    takes = Takes(ScriptedWatch([CALM]))
    with pytest.raises(RuntimeError, match="must say why"):
        for _ in takes:
            pass
