"""music-report: each measure on small hand-made MIDI files whose values are worked out by hand."""

from __future__ import annotations

import json
import math

import mido
import pytest

from emobridge.cli import main
from emobridge.music.report import measure

C_MAJOR, D_MINOR = (48, 52, 55), (50, 53, 57)
ARPEGGIO_C, ARPEGGIO_D = (60, 64, 67, 72), (62, 65, 69, 74)


def midi_file(tracks: dict[str, list[tuple[float, float, int, int]]], bpm: float = 120,
              channels: dict[str, int] | None = None) -> mido.MidiFile:
    """A type-1 file in 4/4: one track per name, each note (start beat, length beats, pitch, velocity)."""
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    midi.tracks.append(mido.MidiTrack([mido.MetaMessage("time_signature", numerator=4, denominator=4),
                                       mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))]))
    for index, (name, notes) in enumerate(tracks.items()):
        channel = (channels or {}).get(name, index)
        timed = []
        for start, length, pitch, velocity in notes:
            timed.append((round(start * 480), 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
            timed.append((round((start + length) * 480), 0, mido.Message("note_off", channel=channel, note=pitch)))
        track, now = mido.MidiTrack([mido.MetaMessage("track_name", name=name)]), 0
        for tick, _, message in sorted(timed, key=lambda item: (item[0], item[1])):
            track.append(message.copy(time=tick - now))
            now = tick
        midi.tracks.append(track)
    return midi


def eight_bars() -> mido.MidiFile:
    """X X Y X X Y X X: X is C-E-G-C quarters over a C major whole note, Y the same a step up over D minor."""
    melody, chords = [], []
    for bar, kind in enumerate("XXYXXYXX"):
        line, chord = (ARPEGGIO_C, C_MAJOR) if kind == "X" else (ARPEGGIO_D, D_MINOR)
        melody += [(4 * bar + beat, 1.0, pitch, 80) for beat, pitch in enumerate(line)]
        chords += [(4 * bar, 4.0, pitch, 60) for pitch in chord]
    return midi_file({"melody": melody, "chords": chords})


def test_repetition_rhythm_and_harmony_of_a_known_file():
    report = measure(eight_bars())
    assert report.bars == 8
    assert report.bar_repetition == pytest.approx(6 / 8)       # bars 1, 3, 4, 5, 6, 7 repeat bar 0 or 2
    assert report.pattern_recurrence == pytest.approx(4 / 7)   # of XX XY YX XX XY YX XX, the last four recur
    assert report.rhythm_recurrence == pytest.approx(7 / 8)    # one onset pattern (every beat) throughout
    assert report.groove == pytest.approx(1.0)
    assert report.distinct_triads == 2                         # C and Dm
    assert report.chord_recurrence == pytest.approx(2 / 5)     # C C Dm C C Dm C C: CCDmC and CDmCC come back
    assert report.ioi_cv == pytest.approx(0.0)                 # the melody is even quarter notes
    assert report.accompaniment_bars == 2                      # the two whole-note chords
    assert report.scale_consistency == pytest.approx(1.0)      # all white keys
    assert report.dissonance == pytest.approx(0.0)             # triads only
    assert report.seconds == pytest.approx(16.0)               # 32 beats at 120 BPM


def test_velocity_and_density_contours_across_five_second_windows():
    """60 BPM, a beat a second: windows of 5 notes at 60, 70, then 80 with five more notes between the beats."""
    notes = [(beat, 0.5, 60, 60 + 10 * (beat // 5)) for beat in range(15)]
    notes += [(10.5 + beat, 0.5, 64, 80) for beat in range(5)]  # the file ends at 15 s: three whole windows
    report = measure(midi_file({"melody": notes}, bpm=60))
    assert report.velocity_sd == pytest.approx(math.sqrt(200 / 3))   # population SD of 60, 70, 80
    mean = 20 / 3
    assert report.density_cv == pytest.approx(math.sqrt(((5 - mean) ** 2 * 2 + (10 - mean) ** 2) / 3) / mean)


def test_velocity_autocorrelation_of_a_strong_weak_sawtooth_is_negative():
    notes = [(beat, 1.0, 60, 80 if beat % 2 == 0 else 60) for beat in range(4)]
    assert measure(midi_file({"melody": notes})).velocity_lag1 == pytest.approx(-0.75)  # -(n-1)/n for n = 4
    rising = [(beat, 1.0, 60, 50 + 5 * beat) for beat in range(8)]
    assert measure(midi_file({"melody": rising})).velocity_lag1 > 0.5


def test_pitch_class_entropy_scale_consistency_and_dissonance():
    triad = measure(midi_file({"melody": [(0, 1, 60, 80), (1, 1, 64, 80), (2, 1, 67, 80), (3, 1, 72, 80)]}))
    assert triad.pitch_class_entropy == pytest.approx(1.5)  # C twice, E and G once: 0.5*1 + 2*0.25*2 bits
    chromatic = measure(midi_file({"melody": [(0, 1, 60, 80), (1, 1, 61, 80), (2, 1, 62, 80), (3, 1, 64, 80)],
                                   "chords": [(0, 4, 48, 60), (0, 4, 49, 60)]}))
    assert chromatic.scale_consistency == pytest.approx(4 / 6)  # of C C# D E + C C#, the two C#s fall outside C major
    assert chromatic.dissonance == pytest.approx(1.0)           # C against C# sounds at every onset


def test_block_density_change_between_eight_bar_blocks():
    sparse = [(4 * bar, 1.0, 60, 80) for bar in range(8)]
    dense = [(32 + 2 * half, 1.0, 62, 80) for half in range(16)]
    report = measure(midi_file({"melody": sparse + dense}))
    assert report.block_density_change == pytest.approx(8 / 12)  # 8 then 16 notes: a change of 8 on a mean of 12
    even = measure(midi_file({"melody": [(4 * bar, 1.0, 60, 80) for bar in range(16)]}))
    assert even.block_density_change == 0.0


def test_the_skyline_is_the_top_line_without_a_melody_track():
    notes = [(beat, 1.0, 72, 90 if beat % 2 else 50) for beat in range(4)] + [(beat, 1.0, 48, 70) for beat in range(4)]
    report = measure(midi_file({"piano": notes}))
    assert report.velocity_lag1 == pytest.approx(-0.75)  # the upper notes alternate; the low ones are ignored


def test_music_report_command_prints_json_for_a_file_and_a_simulation(tmp_path, capsys):
    path = tmp_path / "known.mid"
    eight_bars().save(path)
    assert main(["music-report", str(path), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["bar_repetition"] == pytest.approx(0.75) and measured["distinct_triads"] == 2
    assert main(["music-report", "--emotion", "sad", "--bars", "8"]) == 0
    out = capsys.readouterr().out
    assert "| bars that repeat an earlier bar |" in out and "| bars | 8 |" in out


@pytest.mark.parametrize("argv, message", [
    (["music-report"], "give a MIDI file"),
    (["music-report", "--emotion", "bored"], "unknown emotion 'bored'"),
    (["music-report", "/no/such/file.mid"], "cannot read /no/such/file.mid"),
])
def test_music_report_refuses_bad_input_in_one_line(argv, message, capsys):
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
