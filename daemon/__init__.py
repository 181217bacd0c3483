"""emobridge: facial emotion in, music out (live MIDI and OSC for your DAW)."""

__version__ = "0.1.0"
