"""The command line itself: light to start, -v/-q anywhere, and only user errors turned into exit 2."""

from __future__ import annotations

import argparse
import json
import logging
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


@pytest.mark.parametrize("argv, level", [
    (["demo"], logging.INFO),
    (["-q", "demo"], logging.WARNING),
    (["demo", "-q"], logging.WARNING),
    (["-v", "run"], logging.DEBUG),
    (["run", "--verbose"], logging.DEBUG),
    (["-v", "simulate", "--bars", "2"], logging.DEBUG),  # the command's own parser keeps the level given before it
    (["ports", "--quiet"], logging.WARNING),
])
def test_verbose_and_quiet_go_before_or_after_the_command(argv, level):
    assert cli.build_parser().parse_args(argv).log_level == level


def test_verbose_and_quiet_together_are_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args(["run", "-v", "-q"])
    assert exit_.value.code == 2 and "not allowed with" in capsys.readouterr().err


def test_the_help_says_what_each_level_logs():
    text = " ".join(cli.build_parser().format_help().split())  # argparse wraps lines
    assert "every bar" not in text
    assert "debug detail" in text and "what changes" in text and "only warnings and errors" in text


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
