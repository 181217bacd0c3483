"""--follow abletonosc at a real python-osc UDP server playing Live's part (AbletonOSC's listeners)."""

from __future__ import annotations

import random
import threading
import time

import pytest
from osc_listener import OscListener
from pythonosc.udp_client import SimpleUDPClient

from emobridge.live.clock import MasterClock, wait_until
from emobridge.outputs.abletonosc_in import AbletonOscBeats

pytestmark = pytest.mark.realtime  # beats predicted to 6 ms on the wall clock: 19 ms off once at nice 10 beside CI


def test_live_is_asked_for_its_beats_and_the_grid_follows_them():
    live = OscListener()  # where AbletonOSC listens (11000 in a show)
    master = MasterClock()
    follower = AbletonOscBeats(master, live_port=live.port, reply_port=0)
    try:
        live.wait_for("/live/song/start_listen/is_playing")
        # asked exactly as AbletonOSC's README says: /live/song/start_listen/<property>
        assert [address for address, _ in live.messages] == [
            "/live/song/start_listen/beat", "/live/song/start_listen/tempo", "/live/song/start_listen/is_playing"]
        reply = SimpleUDPClient("127.0.0.1", follower.reply_port)
        reply.send_message("/live/song/get/tempo", 150.0)
        reply.send_message("/live/song/get/is_playing", 1)
        rng, stop = random.Random(2), threading.Event()
        first = time.monotonic() + 0.05
        ideal = []
        for beat in range(12):  # Live's beat listener at 150 BPM, each answer up to 5 ms off
            ideal.append(first + beat * 0.4)
            wait_until(ideal[-1] + rng.uniform(-0.005, 0.005), stop)
            reply.send_message("/live/song/get/beat", beat)
        time.sleep(0.05)
        assert master.running and master.locked
        assert master.tempo == pytest.approx(150.0, abs=1.0)
        assert master.time_of(12) == pytest.approx(first + 12 * 0.4, abs=0.006)
        reply.send_message("/live/song/get/is_playing", 0)
        time.sleep(0.1)
        assert not master.running
    finally:
        follower.close()
        time.sleep(0.1)
        assert live.received("/live/song/stop_listen/beat") == [()]
        live.close()
