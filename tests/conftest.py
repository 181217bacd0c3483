from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from jack import JackServer  # noqa: E402
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
def osc():
    """A real python-osc UDP server on 127.0.0.1 that records what it gets."""
    listener = OscListener()
    yield listener
    listener.close()


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (scripts/test runs two workers), every test on the shared JACK server runs in one
    worker, one after another, as they would without xdist: they share the server's port names and its
    eight-server limit. The other worker takes the rest (in-process shows, training, unit tests) meanwhile."""
    for item in items:
        if item.get_closest_marker("jack") is not None:
            item.add_marker(pytest.mark.xdist_group("jack"))
