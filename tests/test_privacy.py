"""Keys, keyed pseudonyms and zones."""

from __future__ import annotations

import hashlib
import hmac
import pickle

import pyarrow as pa
import pytest

from pipelines import privacy
from pipelines.core.zones import ZONE_NAMES, ZONE_PUBLIC, ZONES, zone_of
from pipelines.privacy import KeyUnavailable, PseudonymKey, pseudonymise, resolve_key

KEY = b"k" * 40
OTHER = b"o" * 40


def test_pseudonyms_are_keyed_hmac_sha256_of_the_normalised_identifier():
    got = pseudonymise(pa.array(["  dni:0123 4567 ", "DNI:0123 4567", None, "   "]), KEY, "document").to_pylist()
    expected = hmac.new(KEY, b"document\x1fDNI:0123 4567", hashlib.sha256).hexdigest()[: privacy.PSEUDONYM_HEX]
    assert got == [expected, expected, None, None]


def test_pseudonyms_are_stable_per_key_and_differ_across_keys_and_namespaces():
    values = pa.array(["A-1", "A-2", "A-1"])
    first = pseudonymise(values, KEY, "person:victim").to_pylist()
    assert first == pseudonymise(values, KEY, "person:victim").to_pylist()
    assert first[0] == first[2] and first[0] != first[1]
    assert set(first).isdisjoint(pseudonymise(values, OTHER, "person:victim").to_pylist())
    assert set(first).isdisjoint(pseudonymise(values, KEY, "person:offender").to_pylist())


def test_pseudonymise_accepts_chunked_non_string_arrays_and_key_objects():
    key = PseudonymKey(source="given", secret=KEY)
    chunked = pa.chunked_array([pa.array([12345678]), pa.array([12345678, None])])
    got = pseudonymise(chunked, key, "n").to_pylist()
    assert got[0] == got[1] == pseudonymise(pa.array(["12345678"]), KEY, "n").to_pylist()[0] and got[2] is None


def test_the_key_comes_from_env_file_or_demo_and_never_shows(tmp_path):
    key = resolve_key(environ={privacy.ENV_KEY: "e" * 40})
    assert key.source == "env" and not key.demo and key.material() == b"e" * 40
    assert "eeee" not in repr(key) and "eeee" not in str(key.describe())
    path = tmp_path / "key"
    path.write_bytes(b"f" * 40 + b"\n")
    from_file = resolve_key(key_file=str(path), environ={privacy.ENV_KEY: "e" * 40})
    assert from_file.source == "file" and from_file.material() == b"f" * 40
    assert resolve_key(environ={privacy.ENV_KEY_FILE: str(path)}).source == "file"
    demo = resolve_key(demo=True, environ={})
    assert demo.demo and demo.describe()["demo"] is True
    assert from_file.fingerprint != key.fingerprint != demo.fingerprint


@pytest.mark.parametrize("environ,key_file,message", [
    ({}, None, "no pseudonymisation key"),
    ({privacy.ENV_KEY: "short"}, None, "shorter than"),
    ({privacy.ENV_KEY: privacy.DEMO_KEY.decode()}, None, "demo key"),
    ({}, "/nonexistent/key", "cannot read the key file"),
])
def test_no_real_key_refuses(environ, key_file, message):
    with pytest.raises(KeyUnavailable, match=message) as info:
        resolve_key(key_file=key_file, environ=environ)
    assert "\n" not in str(info.value)


def test_secret_manager_without_the_gcp_extra_is_a_clear_error():
    try:
        import google.cloud.secretmanager  # noqa: F401
        pytest.skip("google-cloud-secret-manager is installed here")
    except ImportError:
        pass
    with pytest.raises(KeyUnavailable, match="gcp extra"):
        resolve_key(environ={privacy.ENV_KEY_SECRET: "projects/p/secrets/s"})


def test_a_secret_manager_key_is_not_pickled_into_the_job():
    key = PseudonymKey(source="secret_manager", secret=KEY, secret_name="projects/p/secrets/s")
    assert KEY not in pickle.dumps(key)
    plain = PseudonymKey(source="env", secret=KEY)
    assert pickle.loads(pickle.dumps(plain)).material() == KEY


def test_every_output_folder_has_exactly_one_zone():
    assert set(ZONES.values()) <= set(ZONE_NAMES)
    assert set(ZONES.values()) == set(ZONE_NAMES)
    assert zone_of("restricted/victims") == "restricted"
    assert zone_of("public") == "public"
    assert zone_of("quarantine") == "pseudonymised"
    with pytest.raises(KeyError):
        zone_of("elsewhere")


def test_schema_marks_zone_and_demo():
    schema = pa.schema([("a", pa.string())], metadata={"x": "1"})
    marked = privacy.mark_schema(schema, "pseudonymised", privacy.demo_key())
    assert marked.metadata[b"concilia.demo"] == b"true" and marked.metadata[b"x"] == b"1"
    real = privacy.mark_schema(schema, "restricted", PseudonymKey(source="env", secret=KEY))
    assert real.metadata[b"concilia.demo"] == b"false"
    assert real.metadata[b"concilia.pseudonym_key"] == PseudonymKey(source="env", secret=KEY).fingerprint.encode()


def _cli(*args, env_key=None):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CONCILIA_PSEUDONYM_KEY")}
    if env_key:
        env[privacy.ENV_KEY] = env_key
    return subprocess.run([sys.executable, "-m", "pipelines", "run", *args], capture_output=True, text=True, env=env)


def test_concilia_run_refuses_to_start_without_a_real_key(tmp_path):
    from tests.conftest import SAMPLE_FEEDS

    proc = _cli("--feeds", str(SAMPLE_FEEDS), "--out", str(tmp_path / "out"), "--runner=FnApiRunner")
    assert proc.returncode == 3
    assert len(proc.stderr.strip().splitlines()) == 1 and "--demo-key" in proc.stderr
    assert not (tmp_path / "out").exists()
    short = _cli("--feeds", str(SAMPLE_FEEDS), "--out", str(tmp_path / "out"), env_key="tooshort")
    assert short.returncode == 3 and "tooshort" not in short.stderr


def _assert_marked(run_dir, key):
    """Every output of the run in ``run_dir`` says which key pseudonymised it and which zone it lies in."""
    import json

    import pyarrow.parquet as pq

    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["demo"] is key.demo and manifest["pseudonym_key"]["fingerprint"] == key.fingerprint
    for folder, entry in manifest["outputs"].items():
        assert entry["zone"] == zone_of(folder)
        for f in entry["files"]:
            path = run_dir / f["path"]
            if path.suffix == ".parquet":
                meta = pq.read_schema(path).metadata or {}
                assert meta.get(b"concilia.zone", b"").decode() == entry["zone"], f["path"]
                assert meta[b"concilia.demo"] == (b"true" if key.demo else b"false"), f["path"]
            elif path.suffix == ".csv" and entry["zone"] == ZONE_PUBLIC:
                assert path.read_text().startswith("# DEMO") is key.demo
    assert json.loads((run_dir / "public" / "metadata.json").read_text())["demo"] is key.demo
    # every file of the run lies in a folder of exactly one zone (the manifest is pseudonymised)
    for path in run_dir.rglob("*"):
        if path.is_file() and path.name != "manifest.json":
            zone_of(str(path.parent.relative_to(run_dir)))


def test_the_demo_key_marks_every_output(sample_run):
    from pathlib import Path

    _assert_marked(Path(sample_run.run_dir), privacy.demo_key())  # the session's run (tests/conftest.py)


@pytest.mark.pipeline
def test_a_real_key_marks_every_output(tmp_path):
    from pipelines.pipeline import run
    from tests.conftest import SAMPLE_FEEDS, TEST_RUNNER

    feeds = tmp_path / "feeds" / "mimp"
    feeds.mkdir(parents=True)
    (feeds / "ninos_victimas_2018.csv").write_bytes((SAMPLE_FEEDS / "mimp" / "ninos_victimas_2018.csv").read_bytes())
    key = PseudonymKey(source="env", secret=KEY)
    result = run(str(tmp_path / "feeds"), str(tmp_path / "out"), [f"--runner={TEST_RUNNER}"], key=key,
                 allow_missing=["*"])  # one feed alone
    _assert_marked(tmp_path / "out" / "runs" / result.run_id, key)
