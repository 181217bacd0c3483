from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

try:
    import fcntl
except ImportError:  # Windows: no lock, the Link tests may meet each other there
    fcntl = None

sys.path.insert(0, str(Path(__file__).parent))
from jack_rig import DISTURBED, JackServer, JackWatch, close_leftovers  # noqa: E402

from emobridge.live.clock import prompt_threads  # noqa: E402
from osc_listener import OscListener  # noqa: E402


@pytest.fixture(scope="session")
def jack_server():
    """A running JACK server (dummy driver). Missing JACK fails in CI and skips loudly elsewhere."""
    server = JackServer()
    try:
        name = server.start()
    except RuntimeError as error:
        if os.environ.get("CI"):
            pytest.fail(f"JACK is required in CI: {error}")
        pytest.skip(f"MIDI tests need JACK: {error}")
    yield name
    server.stop()


@pytest.fixture
def jack_watch(jack_server):
    """The JACK server's xruns and clock while a test's takes play (jack_rig.Takes retakes a take it disturbed)."""
    watch = JackWatch()
    yield watch
    watch.close()


@pytest.fixture(autouse=True)
def _as_a_show_runs(request):
    """A test on real JACK runs its players and ports in this process: it gets the interpreter setting the daemon
    plays under, and whatever receiver or monitor it left open when it failed is closed after it."""
    with prompt_threads() if request.node.get_closest_marker("jack") else contextlib.nullcontext():
        yield
    close_leftovers()


@pytest.fixture
def osc():
    """A real python-osc UDP server on 127.0.0.1 that records what it gets."""
    listener = OscListener()
    yield listener
    listener.close()


REALTIME_MARKS = ("jack", "link", "realtime")  # tests whose verdict is timing: they need the CPU when they ask


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups (its own hook names each test by its group)
def pytest_collection_modifyitems(config, items):
    """Every test on the shared JACK server is marked ``jack``. They run one after another: they share the
    server's port names and its eight-server limit. With pytest-xdist they share one worker (its group); and
    EMOBRIDGE_TEST_PART=realtime or =other keeps one part of the suite: scripts/test runs the real-time part (the
    JACK, Link and other wall-clock timing tests) as a session of its own, beside the rest at a lower priority."""
    for item in items:
        if "jack_server" in getattr(item, "fixturenames", ()):  # on the server, whether or not its file says so
            item.add_marker(pytest.mark.jack)
        if item.get_closest_marker("jack") is not None:
            item.add_marker(pytest.mark.xdist_group("jack"))
    part = os.environ.get("EMOBRIDGE_TEST_PART")  # scripts/test runs the two parts as two sessions at once
    if part in ("realtime", "other"):
        ours = [any(item.get_closest_marker(m) for m in REALTIME_MARKS) == (part == "realtime") for item in items]
        config.hook.pytest_deselected(items=[item for item, mine in zip(items, ours) if not mine])
        items[:] = [item for item, mine in zip(items, ours) if mine]


@pytest.fixture(autouse=True)
def _one_link_test_at_a_time(request):
    """Every Ableton Link peer on a machine joins the same session, so two Link tests at once (two pytest
    workers, or two test runs) change each other's tempo and phase: a lock file lets one run at a time."""
    if fcntl is None or request.node.get_closest_marker("link") is None:
        yield
        return
    with open(Path(tempfile.gettempdir()) / "emobridge-link-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def pytest_terminal_summary(terminalreporter):
    """Every take the JACK server disturbed, and so taken again: a run says how much it had to retake."""
    if DISTURBED:
        terminalreporter.section("takes retaken: the JACK server lost cycles in them")
        for line in DISTURBED:
            terminalreporter.line(line)
