"""Dataflow readiness: the pipeline translates for the DataflowRunner offline (dry run, placeholder
project, region and gs:// temp location), and a built wheel carries schemas/ and expectations/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import pytest

from pipelines.contracts import load_contracts
from tests.conftest import ROOT

DRY_RUN = ["--runner=DataflowRunner", "--dry_run=True", "--project=concilia-ci", "--region=us-central1",
           "--temp_location=gs://concilia-ci-bucket/tmp", "--no_auth"]  # no credential look-up (offline)


def _needs_gcp_extra():
    for module in ("google.cloud.storage", "apitools", "apache_beam.runners.dataflow.dataflow_runner"):
        pytest.importorskip(module, reason="the Dataflow translation test needs the gcp extra: "
                                           "pip install -c constraints.txt -e '.[test,gcp]'")


@pytest.mark.pipeline
def test_pipeline_translates_for_dataflow_offline():
    _needs_gcp_extra()
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines import privacy
    from pipelines.pipeline import build

    contracts = load_contracts()
    # gs:// inputs that do not exist: a dry run translates without reading or calling any API
    deliveries = [(c.feed, f"gs://concilia-ci-bucket/feeds/{c.files.replace('*', '2018')}", c.files.replace("*", "2018"))
                  for c in contracts]
    from pipelines.service.flex import FinaliseRun, _leaves

    p = beam.Pipeline(options=PipelineOptions(DRY_RUN))
    build(p, deliveries, contracts, "gs://concilia-ci-bucket/out/runs/dry", privacy.demo_key())
    _ = tuple(_leaves(p)) | "FinaliseRun" >> FinaliseRun({"run_id": "dry"})  # the template's job finalises itself
    p.run()
    proto = p.runner.proto_pipeline
    names = {t.unique_name for t in proto.components.transforms.values()}
    for stage in ("Read/ParseFiles", "Harmonise", "LinkVictims", "LinkOffenders", "PersonsVictims",
                  "WriteVictims/WriteParquet", "WriteOffenders/WriteParquet", "WritePersons/WriteParquet",
                  "WriteQuarantine/WriteParquet", "WriteRestrictedVictims/WriteParquet", "FinaliseRun/Finalise"):
        assert stage in names, f"{stage} missing from the translated pipeline"
    (env,) = proto.components.environments.values()
    assert env.urn == "beam:env:docker:v1"  # workers run the SDK container (deploy/Dockerfile)
    # every ParDo's DoFn is pickled from an importable module, never from __main__
    payloads = b"".join(t.spec.payload for t in proto.components.transforms.values())
    assert b"__main__" not in payloads


def test_wheel_carries_the_declarative_resources(tmp_path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ behind
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("pipelines", "schemas", "expectations"):
        if (ROOT / folder).exists():
            shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "uncommitted"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"),
                            str(src)], capture_output=True, text=True, timeout=600)
    if build.returncode and "Could not find a version that satisfies" in build.stderr:
        pytest.skip("no package index reachable for the build backend (setuptools)")
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("concilia-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "pipelines/schemas/model.yaml" in names
    for c in load_contracts():
        assert f"pipelines/schemas/feeds/{c.agency.lower()}/{c.path.rsplit('/', 1)[-1]}" in names
    assert any(n.startswith("pipelines/schemas/codelists/") for n in names)
    for f in (ROOT / "expectations").rglob("*.json"):
        assert f"pipelines/expectations/{f.relative_to(ROOT / 'expectations').as_posix()}" in names
    assert "pipelines/service/watch.py" in names

    # installed without the checkout, the package finds its resources inside itself
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    probe = subprocess.run([sys.executable, "-c", "from pipelines import resources; print(resources.schemas_dir()); "
                            "from pipelines.contracts import load_contracts; print(len(load_contracts()))"],
                           cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr[-2000:]
    where, count = probe.stdout.split()
    assert where == str(target / "pipelines" / "schemas") and int(count) == len(load_contracts())


@pytest.mark.pipeline
def test_the_flex_template_job_finalises_itself(tmp_path, monkeypatch):
    """The Flex Template program only builds and submits (here to the in-process runner); the job's
    last stage does what ``concilia run`` does after the pipeline, with the template's settings."""
    import json

    from pipelines import privacy
    from pipelines.service.flex import template_main
    from tests.conftest import SAMPLE_FEEDS, TEST_RUNNER

    # the template resolves its key as a deployed run does; here a throwaway key in the environment
    monkeypatch.setenv(privacy.ENV_KEY, "k" * privacy.MIN_KEY_BYTES)
    feeds = tmp_path / "feeds"
    for agency in ("sunafil", "pj"):
        shutil.copytree(SAMPLE_FEEDS / agency, feeds / agency)
    out = tmp_path / "out"
    run_id = "20190115T020000000000Z-1a2b3c4d"
    assert template_main(["--feeds", str(feeds), "--out", str(out), "--run_id", run_id, "--period", "2018",
                          "--allow_missing=*", "--public_threshold=7", "--mse_method=independence", "--data_docs=true",
                          f"--runner={TEST_RUNNER}"]) == 0
    manifest = json.loads((out / "runs" / run_id / "manifest.json").read_text())
    assert manifest["status"] == "published" and manifest["validation"]["data_docs"]  # the settings reached the job
    assert json.loads((out / "runs" / run_id / "public" / "metadata.json").read_text())["threshold"] == 7
    assert json.loads((out / "current.json").read_text())["run_id"] == run_id
    assert json.loads((out / "periods" / "2018" / "current.json").read_text())["run_id"] == run_id


def test_terraform_is_formatted():
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed")
    check = subprocess.run([terraform, "fmt", "-check", "-recursive", str(ROOT / "deploy" / "terraform")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


# concilia run options a template or the service does not take, and why
NOT_TEMPLATE_PARAMETERS = {
    "runner": "a Flex Template job runs on Dataflow",
    "key_file": "no files in a launcher: pseudonym_key_secret names the key in Secret Manager",
    "json": "output to a terminal", "verbose": "output to a terminal", "log_json": "output to a terminal",
}
NOT_WATCH_SETTINGS = {"feeds": "the service stages each period's deliveries itself (--landing)",
                      "period": "the service runs one period at a time, named by the landing folders",
                      "json": "output to a terminal"}


def _run_options() -> set[str]:
    import argparse

    from pipelines.cli import _run_parser

    parser = _run_parser(argparse.ArgumentParser().add_subparsers())
    return {a.dest for a in parser._actions if a.dest != "help"}


def test_every_run_option_is_a_template_parameter_and_a_watch_setting():
    import json

    from pipelines.service.cli import watch_parser
    from pipelines.service.flex import template_parser

    metadata = {p["name"]: p for p in json.loads((ROOT / "deploy" / "metadata.json").read_text())["parameters"]}
    template = {a.dest for a in template_parser()._actions if a.dest != "help"}
    assert set(metadata) == template  # metadata.json declares exactly what the program reads
    assert _run_options() - set(NOT_TEMPLATE_PARAMETERS) <= set(metadata)
    assert "pseudonym_key_secret" in metadata
    for name, p in metadata.items():
        assert p["label"] and p["helpText"] and p["regexes"], name
        assert p["isOptional"] == (name not in ("feeds", "out", "run_id")), name
    watch = {a.dest for a in watch_parser()._actions}
    assert _run_options() - set(NOT_WATCH_SETTINGS) <= watch
