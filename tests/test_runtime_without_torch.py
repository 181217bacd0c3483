"""The runtime never imports torch: everything but `emobridge train` works without it."""

import subprocess
import sys

BLOCK_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['onnx'] = None\n"


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + code], capture_output=True, text=True, timeout=120)


def test_cli_help_and_daemon_modules_import_without_torch():
    result = run_without_torch(
        "import emobridge.live.daemon, emobridge.tools.bench, emobridge.perception.emotion\n"
        "from emobridge.cli import main\n"
        "try:\n    main(['simulate', '--help'])\nexcept SystemExit as e:\n    assert e.code == 0\n"
    )
    assert result.returncode == 0, result.stderr
    assert "--trajectory" in result.stdout


def test_train_without_torch_says_how_to_get_it(tmp_path):
    result = run_without_torch(f"from emobridge.cli import main\nraise SystemExit(main(['train', {str(tmp_path)!r}]))")
    assert result.returncode == 2
    assert "pip install 'emobridge[train]'" in result.stderr


def test_python_dash_m_emobridge_is_the_command():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "emobridge", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("emobridge ")
