import subprocess
import sys

from pipelines.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 2
    out = capsys.readouterr().out
    for command in ("run", "sample", "mse", "docs"):
        assert command in out


def test_run_requires_feeds_and_out(capsys):
    try:
        main(["run", "--feeds", "x"])
    except SystemExit as exc:
        assert exc.code == 2
    assert "--out" in capsys.readouterr().err


def test_missing_feeds_root_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines", "run", "--feeds", str(tmp_path / "nowhere"),
                           "--out", str(tmp_path / "out"), "--runner=FnApiRunner", "--demo-key"],
                          capture_output=True, text=True)
    assert proc.returncode == 3
    assert len(proc.stderr.strip().splitlines()) == 1 and "no file" in proc.stderr


def test_sample_and_mse_have_help():
    for command in ("sample", "mse"):
        proc = subprocess.run([sys.executable, "-m", "pipelines", command, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "usage" in proc.stdout.lower()


def test_pinning_a_missing_linkage_model_is_a_one_line_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipelines", "run", "--feeds", "sample_feeds", "--out",
                           str(tmp_path / "out"), "--demo-key", "--linkage-model", str(tmp_path / "none"),
                           "--runner=FnApiRunner"], capture_output=True, text=True)
    assert proc.returncode == 3 and "no linkage model" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
