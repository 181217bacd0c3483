"""The command line itself: light to start, and only user errors turned into exit 2."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from emobridge import cli
from emobridge.errors import UserError

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


def fail_with(monkeypatch, error: BaseException) -> None:
    def command(args):
        raise error

    monkeypatch.setattr(cli, "cmd_ports", command)  # build_parser binds it when main() runs


def test_a_user_error_is_one_line_and_exit_2(monkeypatch, capsys):
    fail_with(monkeypatch, UserError("no such thing: try another"))
    assert cli.main(["ports"]) == 2
    assert capsys.readouterr().err == "emobridge: error: no such thing: try another\n"


@pytest.mark.parametrize("bug", [ValueError("a bug"), FileNotFoundError("a bug"), RuntimeError("a bug")])
def test_a_bug_inside_a_command_keeps_its_traceback(monkeypatch, capsys, bug):
    fail_with(monkeypatch, bug)
    with pytest.raises(type(bug), match="a bug"):
        cli.main(["ports"])
    assert "emobridge: error" not in capsys.readouterr().err


def test_ctrl_c_exits_0(monkeypatch):
    fail_with(monkeypatch, KeyboardInterrupt())
    assert cli.main(["ports"]) == 0
