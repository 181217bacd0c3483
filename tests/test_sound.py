"""The demo is heard: `scripts/demo --sound` plays the bundled clip into FluidSynth on a real JACK server
(the dummy driver), and a JACK client of the test's own records FluidSynth's audio output live.

It runs where FluidSynth and a General MIDI soundfont are installed (CI installs them in .ci/run) and
skips elsewhere, saying how to get them.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from jack_rig import jack_module

ROOT = Path(__file__).resolve().parent.parent
PLAY = ROOT / "examples" / "fluidsynth" / "play.sh"
RMS_FLOOR = 0.005  # about -46 dBFS; the demo at play.sh's gain 0.5 measures about 0.03 (RMS), six times that
BARS = 2  # bars heard after the port is connected (the first bar starts with its chord: sound at once)

pytestmark = pytest.mark.jack


def fluidsynth_or_skip() -> None:
    if shutil.which("fluidsynth") is None or subprocess.run([str(PLAY), "--check"], capture_output=True).returncode:
        pytest.skip("the demo's sound test needs FluidSynth and a GM soundfont: "
                    "sudo apt-get install fluidsynth fluid-soundfont-gm (CI does this in .ci/run)")


class Recorder:
    """Two JACK input ports that keep every sample they receive, from the moment they are connected."""

    def __init__(self, jack, name: str) -> None:
        self.client = jack.Client(name, no_start_server=True)
        self.ports = [self.client.inports.register(side) for side in ("left", "right")]
        self.blocks: list[np.ndarray] = []
        self.recording = False
        self.client.set_process_callback(self.process)
        self.client.activate()

    def process(self, frames: int) -> None:
        if self.recording:
            self.blocks.append(np.stack([port.get_array().copy() for port in self.ports]))

    def connect(self, sources: list[str]) -> None:
        for source, port in zip(sources, self.ports):
            self.client.connect(source, port)
        self.recording = True

    def audio(self) -> np.ndarray:
        return np.concatenate(self.blocks, axis=1) if self.blocks else np.zeros((2, 0), np.float32)

    def close(self) -> None:
        self.client.deactivate()
        self.client.close()


def write_wav(path: Path, audio: np.ndarray, rate: int) -> None:
    pcm = (np.clip(audio.T, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def wav_rms(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(np.float64) / 32768
    return float(np.sqrt(np.mean(samples ** 2))) if samples.size else 0.0


def test_the_demo_plays_through_fluidsynth_and_is_not_silent(jack_server, tmp_path):
    fluidsynth_or_skip()
    jack = jack_module()
    port = f"emobridge-sound-{os.getpid()}"  # play.sh names FluidSynth after it: <port>-fluidsynth
    synth = f"{port}-fluidsynth"
    recorder = Recorder(jack, f"{port}-rec")
    # FLUID_AUDIO=jack: into JACK even on a desktop where the demo would pick PulseAudio or PipeWire
    env = dict(os.environ, MIDI_PORT=port, EMOBRIDGE=str(Path(sys.executable).with_name("emobridge")),
               JACK_NO_START_SERVER="1", FLUID_AUDIO="jack")
    demo = subprocess.Popen([str(ROOT / "scripts" / "demo"), "--sound", "--seed", "1"], env=env, cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(demo.stdout.readline, "")), daemon=True)
    reader.start()

    def seen(text: str) -> bool:
        return any(text in line for line in list(lines))

    try:
        deadline = time.monotonic() + 60
        while not recorder.recording and time.monotonic() < deadline and demo.poll() is None:
            if {f"{synth}:left", f"{synth}:right"} <= {p.name for p in recorder.client.get_ports(f"{synth}:")}:
                recorder.connect([f"{synth}:left", f"{synth}:right"])
            time.sleep(0.05)
        assert recorder.recording, "FluidSynth's audio ports never appeared:\n" + "".join(lines)
        while not seen(f"→ {synth}:midi_00 (JACK)") and time.monotonic() < deadline and demo.poll() is None:
            time.sleep(0.05)
        connected = len(lines)
        while sum("emobridge: bar " in line for line in lines[connected:]) < BARS + 1 and time.monotonic() < deadline:
            assert demo.poll() is None, "the demo ended early:\n" + "".join(lines)
            time.sleep(0.05)
        assert seen("demo: sound: FluidSynth plays it"), "".join(lines)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)  # as Ctrl-C: emobridge releases its notes, play.sh stops FluidSynth
        try:
            demo.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        reader.join(timeout=5)
        rate = recorder.client.samplerate
        recorder.close()

    wav = tmp_path / "demo.wav"
    audio = recorder.audio()
    write_wav(wav, audio, rate)
    seconds, rms = audio.shape[1] / rate, wav_rms(wav)
    print(f"\nrecorded {seconds:.1f} s of FluidSynth at {rate} Hz into {wav}: RMS {rms:.4f} "
          f"({20 * np.log10(max(rms, 1e-9)):.1f} dBFS), peak {np.abs(audio).max(initial=0):.3f}")
    assert seconds > 2, f"only {seconds:.2f} s recorded"
    assert rms > RMS_FLOOR, f"the demo is silent in FluidSynth: RMS {rms:.5f} <= {RMS_FLOOR}\n" + "".join(lines)
    check = jack.Client(f"{port}-check", no_start_server=True)
    left = [p.name for p in check.get_ports(f"{port}")]
    check.close()
    assert not left, f"the demo left JACK ports behind: {left}"
