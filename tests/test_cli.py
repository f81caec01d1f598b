import os
import re
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.options import EXIT_ACCOUNTING, EXIT_INPUT, EXIT_OUTPUT, EXIT_USAGE
from tests.conftest import ROOT, SAMPLE_FEEDS, TEST_RUNNER


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


# ---------------------------------------------------------------- failing safely, and README's exit codes

def _concilia(*args, env=None):
    return subprocess.run([sys.executable, "-m", "pipelines", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env)


def test_unknown_options_and_bad_combinations_are_usage_errors(tmp_path):
    base = ["run", "--feeds", str(SAMPLE_FEEDS), "--out", str(tmp_path / "out")]
    unknown = _concilia(*base, "--demo-key", "--publik-threshold", "3")
    assert unknown.returncode == EXIT_USAGE and unknown.stderr.startswith("usage: concilia run")
    assert "--publik-threshold" in unknown.stderr
    both = _concilia(*base, "--demo-key", "--key-file", str(tmp_path / "k"))
    assert both.returncode == EXIT_USAGE and "not allowed with" in both.stderr
    runner = _concilia(*base, "--demo-key", "--runner", "NoSuchRunner")
    assert runner.returncode == EXIT_USAGE and len(runner.stderr.strip().splitlines()) == 1
    assert "unknown runner 'NoSuchRunner'" in runner.stderr
    beam = _concilia(*base, "--demo-key", "--", "--direct_num_wrkers=2")
    assert beam.returncode == EXIT_USAGE and "did you mean --direct_num_workers" in beam.stderr
    watch = _concilia("watch", "--landing", str(tmp_path), "--out", str(tmp_path / "out"), "--once", "--bogus")
    assert watch.returncode == EXIT_USAGE and watch.stderr.startswith("usage: concilia watch")
    assert not (tmp_path / "out").exists()  # nothing started


def test_version():
    proc = _concilia("--version")
    assert proc.returncode == 0 and re.fullmatch(r"concilia \d+\.\d+\.\d+\n", proc.stdout)


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    """A run the Flex Template program wrote (two small feeds), not yet finalised: its folder is
    copied for each way a finalise can go."""
    from pipelines import privacy
    from pipelines.service.flex import template_main

    out = tmp_path_factory.mktemp("launched") / "out"
    feeds = out.parent / "feeds"
    for agency in ("sunafil", "pj"):
        shutil.copytree(SAMPLE_FEEDS / agency, feeds / agency)
    run_id = "20190115T020000000000Z-1a2b3c4d"
    env = {privacy.ENV_KEY: "k" * privacy.MIN_KEY_BYTES}  # the template resolves its key as a deployed run does
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(privacy.ENV_KEY, env[privacy.ENV_KEY])
        assert template_main(["--feeds", str(feeds), "--out", str(out), "--run_id", run_id, "--finalise=false",
                              "--allow_missing=*",
                              f"--runner={TEST_RUNNER}"]) == 0
    return out, run_id, env


def _finalise(launched, tmp_path, spoil=None):
    source, run_id, env = launched
    out = tmp_path / "out"
    shutil.copytree(source, out)
    if spoil:
        spoil(out / "runs" / run_id)
    return _concilia("finalise", "--out", str(out), "--run-id", run_id, env={**os.environ, **env}), out


def _lose_a_row(run_dir):
    (part,) = (run_dir / "harmonised" / "offenders").glob("*.parquet")
    table = pq.read_table(part)
    pq.write_table(table.slice(1), part)


@pytest.mark.pipeline
def test_status_and_finalise_exit_codes(launched, tmp_path):
    assert _concilia("status", "--out", str(tmp_path / "nowhere")).returncode == EXIT_INPUT
    lost, out = _finalise(launched, tmp_path / "lost", _lose_a_row)
    assert lost.returncode == EXIT_ACCOUNTING and "read" in lost.stderr
    nothing = _concilia("status", "--out", str(out))
    assert nothing.returncode == 1 and "nothing published" in nothing.stderr

    stray, _ = _finalise(launched, tmp_path / "stray", lambda run_dir: (run_dir / "stray.bin").write_bytes(b"?"))
    assert stray.returncode == EXIT_OUTPUT and "stray.bin" in stray.stderr

    done, out = _finalise(launched, tmp_path / "done")
    assert done.returncode == 0, done.stderr
    # progress by default: each stage with its elapsed time, then the rows; no third-party INFO
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("concilia: ") for line in lines), lines
    assert any(re.search(r"cross-feed checks: \d+\.\d s$", line) for line in lines)
    assert re.search(r"published: [\d,]+ rows read, [\d,]+ harmonised, [\d,]+ quarantined; [\d,]+ unique persons; "
                     r"validation (passed|warning|failed); \d+ s$", lines[-1])
    status = _concilia("status", "--out", str(out))
    assert status.returncode == 0 and "verifies: yes" in status.stdout
    assert re.search(r"validation: (passed|warning|failed)", status.stdout) and "started 20" in status.stdout
    (out / "runs" / launched[1] / "persons" / "part-00000-of-00001.parquet").unlink()
    broken = _concilia("status", "--out", str(out))
    assert broken.returncode == EXIT_OUTPUT and "does not verify" in broken.stderr
    shutil.rmtree(out / "runs" / launched[1])
    gone = _concilia("status", "--out", str(out))
    assert gone.returncode == EXIT_OUTPUT and "missing" in gone.stderr


def test_the_readme_lists_the_exit_codes_these_tests_produce():
    """0-5 come from the tests above (1: status with nothing published); 6 (a blocked run) from
    tests/test_validate.py; 7 (a lease held) from tests/service; 3 and 8 of mse from tests/test_estimate.py. A code added to README's list needs a test."""
    listed = {int(c) for c in re.findall(r"^- `(\d)` ", (ROOT / "README.md").read_text(encoding="utf-8"), re.M)}
    assert listed == {0, 1, 2, 3, 4, 5, 6, 7, 8}


@pytest.mark.parametrize("argv, shown", [([], {"progress"}), (["-v"], {"progress", "own"}),
                                         (["-vv"], {"progress", "own", "third-party"})])
def test_progress_by_default_and_third_party_info_only_with_vv(argv, shown, capsys):
    import logging

    from pipelines.logs import configure, verbosity

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure(verbosity(argv))
        logging.getLogger("pipelines.progress").info("progress")
        logging.getLogger("pipelines.read").info("own")
        logging.getLogger("a_library").info("third-party")  # e.g. Great Expectations, Apache Beam
        logging.getLogger("apache_beam.runners").warning("a warning always shows")
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    err = capsys.readouterr().err
    assert {m for m in ("progress", "own", "third-party") if m in err.replace("a warning", "")} == shown
    assert "a warning always shows" in err
