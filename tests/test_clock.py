import threading

from emobridge.live.clock import BeatClock, wait_until


class FakeTime:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_beats_map_to_absolute_times():
    now = FakeTime()
    clock = BeatClock(120, now)
    assert clock.time_of(0) == 100.0
    assert clock.time_of(8) == 104.0  # 0.5 s per beat
    assert clock.beat_at(101.25) == 2.5


def test_tempo_change_keeps_earlier_beats_and_reanchors():
    now = FakeTime()
    clock = BeatClock(120, now)
    clock.set_tempo(60, at_beat=4)  # bar 2 starts at 102.0 s and runs at 1 s per beat
    assert clock.time_of(4) == 102.0
    assert clock.time_of(8) == 106.0
    assert clock.beat_at(103.0) == 5.0


def test_deadlines_do_not_drift_with_many_small_tempo_changes():
    # A thousand bars alternating tempo: deadlines come from the anchor, not from summed sleeps.
    clock = BeatClock(100, FakeTime(0.0))
    expected = 0.0
    for bar in range(1000):
        tempo = 100 if bar % 2 == 0 else 140
        clock.set_tempo(tempo, at_beat=bar * 4)
        expected += 4 * 60 / tempo
    assert abs(clock.time_of(4000) - expected) < 1e-9


def test_wait_until_returns_false_as_soon_as_stopped():
    stop = threading.Event()
    threading.Timer(0.05, stop.set).start()
    import time

    started = time.monotonic()
    assert wait_until(started + 10, stop) is False
    assert time.monotonic() - started < 1.0


def test_wait_until_reaches_the_deadline():
    import time

    stop = threading.Event()
    deadline = time.monotonic() + 0.05
    assert wait_until(deadline, stop) is True
    assert time.monotonic() >= deadline
