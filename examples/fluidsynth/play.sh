#!/usr/bin/env bash
# Hear emobridge without a DAW: FluidSynth plays the General MIDI soundfont from the emobridge port.
#
#   examples/fluidsynth/play.sh                          # the bundled demo clip (no camera needed)
#   examples/fluidsynth/play.sh run                      # your webcam
#   examples/fluidsynth/play.sh run --video take1.mp4    # any `emobridge run` / `demo` options
#   examples/fluidsynth/play.sh --check                  # FluidSynth and a soundfont here? (exit 0 or 1)
#
# Linux: JACK when a JACK server runs (FluidSynth's audio goes to system:playback), else the
# ALSA sequencer with PipeWire/PulseAudio (or plain ALSA) for the sound. macOS: CoreMIDI and
# CoreAudio. Ctrl-C stops emobridge (every note released) and then FluidSynth.
#
# Environment: SOUNDFONT (a .sf2 file), MIDI_BACKEND (jack, alsa or coremidi), MIDI_PORT
# (default emobridge), FLUID_AUDIO (FluidSynth's audio driver; with JACK MIDI it defaults to JACK
# audio, and e.g. FLUID_AUDIO=pulseaudio plays a JACK dummy server's MIDI on PulseAudio/PipeWire),
# GAIN (default 0.5), EMOBRIDGE (the emobridge command).
# Exit status: emobridge's; 2 when something is missing; 3 when FluidSynth could not start
# (scripts/demo then plays on without sound).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
port=${MIDI_PORT:-emobridge}
synth_id=$port-fluidsynth  # one per port, so two of these (a test beside a user's) never clash
gain=${GAIN:-0.5}

die() { echo "play.sh: $*" >&2; exit 2; }
synth_failed() {  # FluidSynth did not come up: say so with its own last words, and exit 3
  echo "play.sh: $*" >&2
  [ -s "${synth_log:-}" ] && grep -i -E 'error|fail|giving up|cannot' "$synth_log" | head -n 3 | sed 's/^/play.sh:   /' >&2
  exit 3
}

find_soundfont() {
  local candidate
  if [ -n "${SOUNDFONT:-}" ]; then [ -f "$SOUNDFONT" ] && echo "$SOUNDFONT"; return; fi
  for candidate in /usr/share/sounds/sf2/FluidR3_GM.sf2 /usr/share/sounds/sf2/default-GM.sf2 \
                   /usr/share/soundfonts/FluidR3_GM.sf2 /usr/share/soundfonts/default.sf2 \
                   /opt/homebrew/share/soundfonts/default.sf2 /usr/local/share/soundfonts/default.sf2; do
    if [ -f "$candidate" ]; then echo "$candidate"; return; fi
  done
}

if [ "${1:-}" = --check ]; then  # for scripts/demo: can this machine play through FluidSynth at all?
  command -v fluidsynth >/dev/null || { echo "fluidsynth is not installed"; exit 1; }
  find_soundfont || { echo "no General MIDI soundfont found (SOUNDFONT=/path/to/file.sf2)"; exit 1; }
  exit 0
fi

# --- what to run -----------------------------------------------------------------------------
if [ -n "${EMOBRIDGE:-}" ]; then emobridge=$EMOBRIDGE
elif [ -x "$root/.venv/bin/emobridge" ]; then emobridge=$root/.venv/bin/emobridge
elif command -v emobridge >/dev/null; then emobridge=$(command -v emobridge)
else die "emobridge is not installed: run scripts/demo once (it makes .venv) or pip install ."; fi

command -v fluidsynth >/dev/null ||
  die "fluidsynth is not installed: sudo apt-get install fluidsynth fluid-soundfont-gm (macOS: brew install fluid-synth)"

soundfont=$(find_soundfont || true)
[ -n "$soundfont" ] || die "no General MIDI soundfont found: sudo apt-get install fluid-soundfont-gm, or SOUNDFONT=/path/to/file.sf2"

case "${1:-}" in
  run|demo) subcommand=$1; shift ;;
  *) subcommand=demo ;;
esac

# --- which MIDI system -----------------------------------------------------------------------
jack_running() { JACK_NO_START_SERVER=1 jack_lsp >/dev/null 2>&1; }
backend=${MIDI_BACKEND:-}
if [ -z "$backend" ]; then
  if command -v jack_lsp >/dev/null && jack_running; then backend=jack
  elif [ -e /dev/snd/seq ]; then backend=alsa
  elif [ "$(uname -s)" = Darwin ]; then backend=coremidi
  else die "no JACK server runs and there is no ALSA sequencer: start JACK (QjackCtl, or 'jackd -d dummy &' for a silent test) or 'sudo modprobe snd-seq'"
  fi
fi

wait_until() {  # wait_until SECONDS COMMAND...: poll until COMMAND succeeds
  local tries=$(( $1 * 10 )); shift
  while ! "$@" >/dev/null 2>&1; do
    tries=$((tries - 1)); [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}

wait_for_synth() {  # wait_for_synth COMMAND...: until COMMAND succeeds (15 s); 1 at once if FluidSynth quit
  local tries=150
  while ! "$@" >/dev/null 2>&1; do
    kill -0 "$synth_pid" 2>/dev/null || return 1
    tries=$((tries - 1)); [ "$tries" -gt 0 ] || return 1
    sleep 0.1
  done
}

alsa_client() {  # alsa_client -i|-o PATTERN: the client number whose name matches
  aconnect "$1" 2>/dev/null | sed -n "s/^client \([0-9]*\): '\([^']*\)'.*/\1 \2/p" | grep -- "$2" | head -n1 | cut -d' ' -f1
}

synth_pid="" connect_pid=""
synth_log=$(mktemp)  # FluidSynth's messages, shown when it fails to start
cleanup() {
  for pid in $connect_pid $synth_pid; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -f "$synth_log"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# FluidSynth quits when its command shell ends, and --no-shell quits at once: give it a shell
# whose input is a pipe that this script holds open (and that closes when the script ends).
fifo_dir=$(mktemp -d)
mkfifo "$fifo_dir/shell"
exec 3<>"$fifo_dir/shell"
rm -rf "$fifo_dir"

midi_args=()
case "$backend" in
  jack)
    export JACK_NO_START_SERVER=1
    audio=${FLUID_AUDIO:-jack}
    audio_args=(-a "$audio")
    [ "$audio" = jack ] && audio_args+=(-o audio.jack.autoconnect=1 -o "audio.jack.id=$synth_id")
    fluidsynth "${audio_args[@]}" -m jack -g "$gain" -o "midi.jack.id=$synth_id" "$soundfont" <&3 >"$synth_log" 2>&1 &
    synth_pid=$!
    wait_for_synth sh -c "jack_lsp | grep -qx '$synth_id:midi_00'" ||
      synth_failed "FluidSynth (audio: $audio) did not show up in JACK"
    midi_args=(--midi-backend jack --midi-port "$port")
    connect() {
      wait_until 120 sh -c "jack_lsp | grep -qx '$port:$port'" || return 1
      jack_connect "$port:$port" "$synth_id:midi_00" && echo "play.sh: $port:$port → $synth_id:midi_00 (JACK)" >&2
    }
    ;;
  alsa)
    audio=${FLUID_AUDIO:-}
    if [ -z "$audio" ]; then
      if command -v pactl >/dev/null && pactl info >/dev/null 2>&1; then audio=pulseaudio; else audio=alsa; fi
    fi
    fluidsynth -a "$audio" -m alsa_seq -g "$gain" -o "midi.alsa_seq.id=$synth_id" "$soundfont" <&3 >"$synth_log" 2>&1 &
    synth_pid=$!
    wait_for_synth sh -c "aconnect -o | grep -q '$synth_id'" ||
      synth_failed "FluidSynth (audio: $audio) did not show up in the ALSA sequencer (aconnect -o)"
    midi_args=(--midi-backend alsa --midi-port "$port")
    connect() {
      wait_until 120 sh -c "aconnect -i | grep -q \"client [0-9]*: '$port'\"" || return 1
      local from to
      from=$(alsa_client -i "'$port'"); to=$(alsa_client -o "$synth_id")
      aconnect "$from:0" "$to:0" && echo "play.sh: ALSA $from:0 ($port) → $to:0 (FluidSynth)" >&2
    }
    ;;
  coremidi)
    audio=coreaudio
    fluidsynth -a coreaudio -m coremidi -g "$gain" "$soundfont" <&3 >"$synth_log" 2>&1 &
    synth_pid=$!
    sleep 2  # FluidSynth's CoreMIDI input appears as "FluidSynth virtual port"; emobridge opens it directly
    midi_args=(--midi-backend coremidi --midi-connect "FluidSynth virtual port")
    connect() { :; }
    ;;
  *) die "MIDI_BACKEND=$backend: use jack, alsa or coremidi" ;;
esac

# Its MIDI input can appear before its audio driver fails: wait until it reaches its command shell
# (3 s at most), which it does only once every driver is up, and make sure it is still there.
for _ in $(seq 30); do
  kill -0 "$synth_pid" 2>/dev/null && ! grep -q "help" "$synth_log" || break
  sleep 0.1
done
kill -0 "$synth_pid" 2>/dev/null || synth_failed "FluidSynth exited at start (try FLUID_AUDIO=alsa, or check the soundfont)"
echo "play.sh: FluidSynth ($backend${audio:+, audio: $audio}) with $(basename "$soundfont"); starting emobridge $subcommand" >&2
connect 3<&- &
connect_pid=$!
"$emobridge" "$subcommand" "${midi_args[@]}" "$@" 3<&-
