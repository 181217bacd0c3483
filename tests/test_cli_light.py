"""The command line itself: light to start."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from emobridge import cli

HEAVY = ("cv2", "onnxruntime", "torch", "onnx", "numpy")

# Runs in a fresh interpreter: this test process has long imported all of them.
PROBE = """
import json, sys
from emobridge.cli import build_parser, main

build_parser()
for argv in {argvs!r}:
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps(sorted(name for name in {heavy!r} if name in sys.modules)))
"""


def loaded_after(argvs: list[list[str]]) -> list[str]:
    done = subprocess.run([sys.executable, "-c", PROBE.format(argvs=argvs, heavy=HEAVY)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_help_loads_no_opencv_onnxruntime_torch_or_numpy():
    parser = cli.build_parser()
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert loaded_after([["--help"], *([name, "--help"] for name in commands)]) == []


def test_an_argparse_error_loads_nothing_heavy_either():
    assert loaded_after([["simulate", "--bars", "many"]]) == []
