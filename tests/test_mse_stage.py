"""The MSE pipeline stage: capture histories from persons, small lists, refusals, outputs and wiring."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import model, public, publish
from pipelines.estimate import DEFAULT_METHOD, CaptureHistory, LatentClassSettings, estimate
from pipelines.estimate.cli import mse_main
from pipelines.estimate.pipeline_stage import (
    CaptureCellsFn,
    Stratum,
    EstimatePopulation,
    capture_cells,
    capture_history,
    choose_lists,
    estimate_strata,
    fit_stratum,
    manifest_entry,
    estimates_table,
    strata,
)
from pipelines import privacy
from pipelines.privacy import demo_key
from pipelines.summary import render
from tests.conftest import TEST_RUNNER

# Victims seen by each combination of agencies: the 2018 sample's overlap, SUNAFIL small.
COMBOS = {("PNP",): 95, ("MP", "PNP"): 52, ("MP",): 31, ("MIMP", "PNP"): 7, ("MIMP", "MP", "PNP"): 4,
          ("MIMP",): 2, ("MIMP", "MP"): 1, ("SUNAFIL",): 3, ("PNP", "SUNAFIL"): 2}


def persons_table(combos: dict, sex=lambda i: "FEMALE" if i % 3 else "MALE", role="victim") -> pa.Table:
    rows = []
    for agencies, n in combos.items():
        for _ in range(n):
            i = len(rows)
            rows.append({"person_id": f"p{i}", "role": role, "agencies": sorted(agencies), "event_year": 2018,
                         "sex": sex(i), "child_adult": "CHILD" if "MIMP" in agencies else "ADULT",
                         "exploitation_type": None if i % 7 == 0 else "SEXUAL_EXPLOITATION"})
    return pa.Table.from_pylist(rows, schema=pa.schema([
        ("person_id", pa.string()), ("role", pa.string()), ("agencies", pa.list_(pa.string())),
        ("event_year", pa.int32()), ("sex", pa.string()), ("child_adult", pa.string()),
        ("exploitation_type", pa.string())]))


def merged_cells(table: pa.Table, batch: int = 40) -> Counter:
    fn = CaptureCellsFn()
    accs = []
    for start in range(0, table.num_rows, batch):  # partial counts per batch, then merged
        accs.append(fn.add_input(fn.create_accumulator(), table.slice(start, batch)))
    return fn.extract_output(fn.merge_accumulators(accs))


def test_capture_histories_from_persons_batches_merge_to_the_whole():
    table = persons_table(COMBOS)
    offenders = persons_table({("MP", "PJ"): 5}, role="offender")
    cells = merged_cells(pa.concat_tables([table, offenders]))
    assert cells == capture_cells(table)  # offenders are not a victim stratum
    overall = strata(cells)[0]
    assert (overall.role, overall.name, overall.observed, overall.period) == ("victim", "all", 197, "2018")
    lists, dropped = choose_lists(overall)
    # SUNAFIL (5 persons) is under the small-list bound: merged with MIMP, the smallest other list
    assert [name for name, _ in lists] == ["PNP", "MP", "MIMP|SUNAFIL"] and dropped == []
    ch = capture_history(overall, lists)
    assert ch.lists == ("PNP", "MP", "MIMP|SUNAFIL")
    assert ch.n_observed == 197
    assert ch.list_totals() == {"PNP": 95 + 52 + 7 + 4 + 2, "MP": 52 + 31 + 4 + 1, "MIMP|SUNAFIL": 7 + 4 + 2 + 1 + 3 + 2}
    by_code = {tuple(r[c] for c in ch.lists): r["count"] for r in ch.to_rows()}
    assert by_code[(1, 0, 1)] == 7 + 2 and by_code[(0, 0, 1)] == 2 + 3 and by_code[(1, 1, 1)] == 4


def test_strata_skip_unknown_values_and_drop_agencies_that_saw_nobody():
    cells = capture_cells(persons_table(COMBOS))
    names = [s.name for s in strata(cells)]
    assert names == ["all", "sex=FEMALE", "sex=MALE", "child_adult=ADULT", "child_adult=CHILD",
                     "exploitation_type=SEXUAL_EXPLOITATION"]  # the null exploitation types count in "all" only
    adults = next(s for s in strata(cells) if s.name == "child_adult=ADULT")
    lists, dropped = choose_lists(adults)
    assert dropped == ["MIMP"]  # MIMP records children only
    assert [name for name, _ in lists] == ["PNP", "MP|SUNAFIL"]  # no other small list: into the smallest


def test_a_stratum_with_no_overlap_is_refused_with_its_reason():
    cells = capture_cells(persons_table({("PNP",): 40, ("MP",): 30, ("MIMP",): 12}))
    row, ch = fit_stratum(strata(cells)[0])
    assert row.get("estimate") is None
    assert "too few overlaps" in row["refused_reason"] and row["overlap"] == 0
    assert ch.n_observed == 82 and row["observed"] == 82
    few = capture_cells(persons_table({("PNP",): 40, ("MP",): 30, ("MP", "PNP"): 2}))
    assert "2 persons on more than one list" in fit_stratum(strata(few)[0])[0]["refused_reason"]
    tiny = capture_cells(persons_table({("PNP",): 4, ("MP", "PNP"): 3}))
    row, _ = fit_stratum(strata(tiny)[0])  # both lists small: merged into one, no MSE possible
    assert row.get("estimate") is None and row["lists"] == ["PNP|MP"]
    assert row["refused_reason"].startswith("fewer than two lists")


def test_estimates_match_the_estimator_on_the_fitted_table():
    cells = capture_cells(persons_table(COMBOS))
    rows, histories = estimate_strata(cells)
    overall = rows[0]
    direct = estimate(CaptureHistory.from_arrow(histories["victim-all.parquet"]))
    assert overall["estimate"] == pytest.approx(direct.estimate)
    assert (overall["lower"], overall["upper"]) == pytest.approx((direct.lower, direct.upper))
    assert overall["lower"] < overall["estimate"] < overall["upper"] and overall["estimate"] > 197
    table = estimates_table(rows)
    assert table.schema.equals(model.table("mse_estimate").schema(), check_metadata=False)
    entry = manifest_entry(table)["victims"]
    assert list(entry)[:8] == ["estimate", "lower", "upper", "method", "model", "observed", "lists", "interval_method"]
    assert entry["linkage_lower"] is None and entry["methods_disagree"] is None  # no band, no comparison asked
    assert entry["method"] == DEFAULT_METHOD == "pairwise_or_latent_class" and entry["interval_method"] == "profile"
    assert entry["observed"] == 197
    refused = manifest_entry(estimates_table([{**rows[0], "estimate": None, "refused_reason": "too few"}]))
    assert refused == {"victims": {"refused": "too few"}}


def test_public_table_suppresses_an_estimate_whose_count_is_hidden():
    cells = capture_cells(persons_table(COMBOS))
    rows, _ = estimate_strata(cells)
    finest = {"victims": public.count_cells(persons_table(COMBOS), public.POPULATIONS["victims"])}
    release = public.build_release(finest, threshold=5)
    out = {r[1]: r for r in public.estimate_rows(release, rows)[1:]}
    assert out["all"][2] == "197" and out["all"][3] == str(round(rows[0]["estimate"]))
    big = public.build_release(finest, threshold=1000)  # every count hidden: so is every estimate
    assert all(r[3:6] == ["x", "x", "x"] for r in public.estimate_rows(big, rows)[1:])


@pytest.mark.pipeline
def test_stage_in_a_pipeline_publishes_estimates_manifest_summary_and_report(tmp_path, capsys):
    """A tiny run: persons through WritePersons and EstimatePopulation, then the real finalise_run."""
    out, run_id = tmp_path / "out", "20180101T000000000000Z-test"
    run_dir = out / "runs" / run_id
    persons = persons_table(COMBOS)
    full = model.conform(persons.append_column("n_records", pa.array([1] * persons.num_rows, pa.int32()))
                         .append_column("feeds", pa.array([["x"]] * persons.num_rows, pa.list_(pa.string())))
                         .append_column("has_conflict", pa.array([False] * persons.num_rows)), model.table("person"))
    with beam.Pipeline(runner=TEST_RUNNER) as p:
        batches = p | beam.Create([full.slice(0, 100), full.slice(100)])
        _ = batches | publish.WriteTables(str(run_dir / "persons"), model.table("person").schema())
        _ = batches | EstimatePopulation(str(run_dir / "mse"), privacy.mark_schema(
            model.table("mse_estimate").schema(), "pseudonymised", demo_key()))
    (run_dir / publish.WORK_DIR).mkdir()
    from pipelines.aggregates import Counts, RunSummary, combine, person_counts
    from pipelines.report import publish_report

    summary = RunSummary(persons=combine(Counts(person_counts), full))  # what the job's combine would give
    manifest = publish.finalise_run(str(out), run_id, [], dt.datetime.now(dt.timezone.utc), demo_key(),
                                    before_switch=lambda rd, m, s: publish_report(rd, None, m, s), summary=summary)
    est = manifest["mse"]["victims"]
    written = pq.read_table(run_dir / "mse" / "estimates.parquet")
    assert est["estimate"] == pytest.approx(written.column("estimate")[0].as_py()) and est["observed"] == 197
    assert {f["path"] for f in manifest["outputs"]["mse/capture_histories"]["files"]} >= {
        "mse/capture_histories/victim-all.parquet"}
    assert json.loads((out / "current.json").read_text())["run_id"] == run_id
    assert pq.read_schema(run_dir / "mse" / "estimates.parquet").metadata[b"concilia.demo"] == b"true"
    history = pq.read_schema(run_dir / "mse" / "capture_histories" / "victim-all.parquet")
    assert history.metadata[b"concilia.demo"] == b"true" and history.metadata[b"concilia.table"] == b"capture_history"
    assert b"persons" in history.field("count").metadata[b"description"].lower()
    assert all(p.suffix == ".parquet" for p in (run_dir / "mse").rglob("*") if p.is_file())  # pyarrow.dataset reads mse/
    # an analyst refits the published table with the CLI and gets the same figure
    assert mse_main([str(run_dir / "mse" / "capture_histories" / "victim-all.parquet")]) == 0
    assert json.loads(capsys.readouterr().out)["estimate"] == pytest.approx(est["estimate"])
    text = render(manifest, str(run_dir), 1.0)
    assert "seen by PNP 160, MP 88, MIMP 14, SUNAFIL 5" in text
    assert "seen by any agency (unique): 197" in text
    assert f"estimated total: {est['estimate']:,.0f} (95% interval {est['lower']:,.0f} to {est['upper']:,.0f})" in text
    html = (run_dir / "reports" / "index.html").read_text()
    assert "Estimated total" in html and f"{est['estimate']:,.0f}" in html


def test_simulation_smoke_draws_the_generator_lists_and_runs_the_stage_path():
    """The benchmark's calibration (benchmarks/mse/simulate.py), not its coverage: a few seconds."""
    import importlib.util
    import sys

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("mse_simulate", ROOT / "benchmarks" / "mse" / "simulate.py")
    sim = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = sim  # its dataclasses look their module up
    spec.loader.exec_module(sim)
    table, total = sim.sample_world()
    assert total == 3221 and table[(0, 0, 0, 0)] == 1300  # the generator's unseen victims
    scenarios = {s.name: s for s in sim.build_scenarios()}
    x = sim._cells(4)
    sizes = {name: (x * s.probabilities[:, None]).sum(0) * s.total for name, s in scenarios.items()
             if s.kind == "a" and s.lists == sim.SAMPLE_LISTS}
    for name, expected in sizes.items():  # every sample scenario keeps the generator's list sizes
        assert expected == pytest.approx([1588, 875, 126, 8], rel=0.02), name
    het = scenarios["b_sample_heterogeneous_sigma1"]
    draws = np.mean([(x * het.draw(np.random.default_rng(i))[:, None]).sum(0) for i in range(20)], axis=0)
    assert draws == pytest.approx([1588, 875, 126, 8], rel=0.1, abs=3)
    result = sim.run(2, 1, only=["a3_five_lists_two_pairs"])["scenarios"][0]
    assert result["replicates"] == 2 and result["true_total"] == 2000 and result["oracle_true_model"]["fitted"] == 2


def test_more_lists_than_the_default_averages_over_fall_back_to_stepwise_and_say_so():
    rng = np.random.default_rng(5)
    names = tuple(f"L{j}" for j in range(7))
    on = rng.random((600, 7)) < 0.3
    sets = Counter(frozenset(n for n, hit in zip(names, row) if hit) for row in on if row.any())
    row, ch = fit_stratum(Stratum("victim", None, None, sets, names, (2018,)))
    assert ch.k == 7 and row["method"] == "stepwise_csv" and row["estimate"] is not None
    assert any("pairwise_or_latent_class supports at most 6 lists" in w for w in row["warnings"])


def test_stratified_estimate_sums_the_strata_with_an_interval_for_every_one():
    cells = capture_cells(persons_table(COMBOS))
    rows, _ = estimate_strata(cells, stratify_by="sex", min_stratum_persons=10)
    by = {r["stratum"]: r for r in rows}
    summed, parts = by["sum:sex"], [by["sex=FEMALE"], by["sex=MALE"]]
    assert summed["estimate"] == pytest.approx(sum(p["estimate"] for p in parts))
    assert summed["observed"] == 197 and summed["dimension"] == "sex"
    assert summed["lower"] < summed["estimate"] < summed["upper"]
    # independent strata: the sum's ends are less extreme than the sums of the strata's ends
    assert sum(p["lower"] for p in parts) <= summed["lower"] and summed["upper"] <= sum(p["upper"] for p in parts)
    assert summed["upper"] - summed["lower"] > min(p["upper"] - p["lower"] for p in parts)
    assert [c.split(":")[0] for c in summed["components"]] == ["sex=FEMALE", "sex=MALE"]
    assert manifest_entry(estimates_table(rows))["victims"]["stratified"]["stratum"] == "sum:sex"


def test_sparse_strata_are_merged_by_the_declared_rule():
    cells = capture_cells(persons_table(COMBOS))
    rows, _ = estimate_strata(cells, stratify_by="sex", min_stratum_persons=100)  # MALE (66) is sparse
    summed = next(r for r in rows if r["stratum"] == "sum:sex")
    assert [c.split(":")[0] for c in summed["components"]] == ["sex=FEMALE|MALE"]
    assert summed["estimate"] == pytest.approx(rows[0]["estimate"])  # one stratum left: everyone


def test_one_stratum_summed_keeps_its_own_interval():
    from pipelines.estimate.stratified import sum_estimates

    row = {"estimate": 300.0, "lower": 250.0, "upper": 420.0, "observed": 197}
    total = sum_estimates([row])
    assert total["estimate"] == 300 and total["lower"] == pytest.approx(250, rel=0.01)
    assert total["upper"] == pytest.approx(420, rel=0.02)


def test_latent_class_strata_sum_their_posterior_draws():
    from pipelines.estimate import LatentClassSettings

    cells = capture_cells(persons_table(COMBOS))
    small = LatentClassSettings(chains=2, burn_in=100, draws=100, thin=2)
    rows, _ = estimate_strata(cells, "latent_class", dimensions=(), stratify_by="sex", min_stratum_persons=10,
                              mcmc=small)
    summed = next(r for r in rows if r["stratum"] == "sum:sex")
    assert summed["interval_method"] == "sum of the strata's posterior draws"
    assert 197 <= summed["lower"] < summed["estimate"] < summed["upper"]
    assert rows[0]["rhat"] is not None and rows[0]["ess"] > 0


def test_linkage_band_links_the_uncertain_pairs_and_lowers_the_estimate():
    from pipelines.estimate.linkage_band import involved_persons, relinked_cells
    from pipelines.estimate.pipeline_stage import merge_person_rows, person_key

    persons = persons_table(COMBOS)
    people = persons.to_pylist()
    pnp = [r["person_id"] for r in people if r["agencies"] == ["PNP"]][:10]
    mp = [r["person_id"] for r in people if r["agencies"] == ["MP"]][:10]
    pairs = list(zip(pnp, mp))  # ten persons split in two by a missed link
    cells = capture_cells(persons)
    other, fewer = relinked_cells(cells, involved_persons(persons, set(pnp + mp)), pairs, person_key,
                                  merge_person_rows)
    assert fewer == 10 and sum(other.values()) == 187
    rows, _ = estimate_strata(cells, stratify_by="sex", min_stratum_persons=10,
                              relinked={"victim": (other, fewer, len(pairs))})
    overall, summed = rows[0], next(r for r in rows if r["stratum"] == "sum:sex")
    for row in (overall, summed):
        assert row["linkage_lower"] < row["linkage_upper"] == pytest.approx(row["estimate"])
        assert row["uncertain_pairs"] == 10 and any("linkage band" in w for w in row["warnings"])


@pytest.mark.pipeline
def test_stage_takes_the_uncertain_pairs_from_the_review_queue(tmp_path):
    from pipelines.estimate.linkage_band import UncertainPersonPairs

    persons = persons_table(COMBOS)
    people = persons.to_pylist()
    pnp = [r["person_id"] for r in people if r["agencies"] == ["PNP"]][:5]
    mp = [r["person_id"] for r in people if r["agencies"] == ["MP"]][:5]
    records = pa.table({"record_uid": [f"r-{p}" for p in pnp + mp], "person_id": pnp + mp})
    review = pa.table({"left_uid": [f"r-{p}" for p in pnp] + ["r-x"], "right_uid": [f"r-{p}" for p in mp] + ["r-y"],
                       "match_probability": [0.6] * 5 + [0.95],
                       "reason": ["uncertain"] * 5 + ["different_valid_documents"]})
    with beam.Pipeline(runner=TEST_RUNNER) as p:
        pairs = ((p | "Review" >> beam.Create([review]), p | "Records" >> beam.Create([records.slice(0, 4), records.slice(4)]))
                 | UncertainPersonPairs("victim"))
        _ = p | "Persons" >> beam.Create([persons]) | EstimatePopulation(str(tmp_path / "mse"), uncertain=[pairs])
    overall = pq.read_table(tmp_path / "mse" / "estimates.parquet").to_pylist()[0]
    assert overall["uncertain_pairs"] == 5 and overall["linkage_lower"] < overall["linkage_upper"]


def test_another_method_is_compared_and_a_disagreement_is_reported():
    from pipelines.estimate.pipeline_stage import add_comparison
    from pipelines.report.sections import _mse_rests_on

    row = {"method": "model_average", "estimate": 300.0, "lower": 250.0, "upper": 380.0, "warnings": []}
    add_comparison(row, {"method": "latent_class", "estimate": 500.0, "lower": 400.0, "upper": 700.0})
    assert row["methods_disagree"] and "methods disagree" in row["warnings"][-1]
    near = {"method": "model_average", "estimate": 300.0, "lower": 250.0, "upper": 380.0, "warnings": []}
    add_comparison(near, {"method": "latent_class", "estimate": 360.0, "lower": 320.0, "upper": 600.0})
    assert near["methods_disagree"] is False  # 360 is inside the average's interval
    assert _mse_rests_on(row)["comparison"]["disagree"] is True


def test_run_summary_and_report_say_what_the_estimate_rests_on():
    from pipelines.estimate import LatentClassSettings

    cells = capture_cells(persons_table(COMBOS))
    rows, _ = estimate_strata(cells, stratify_by="sex", min_stratum_persons=10, compare_method="latent_class",
                              mcmc=LatentClassSettings(chains=2, burn_in=100, draws=100, thin=2),
                              relinked={"victim": (cells, 0, 0)})
    entry = manifest_entry(estimates_table(rows))["victims"]
    assert entry["comparison_method"] == "latent_class" and entry["stratified"]["stratum"] == "sum:sex"
    manifest = {"mse": {"victims": entry}, "figures": {"reconciled_unique": {}}}
    from pipelines.summary import _mse_lines

    text = "\n".join(_mse_lines(manifest))
    assert "stratified (sum:sex)" in text and "linkage band" in text and "latent_class:" in text


def test_run_settings_are_declared_and_checked(tmp_path):
    from pipelines.estimate.pipeline_stage import load_settings

    settings = load_settings()
    assert settings.method == DEFAULT_METHOD  # `concilia mse` and the run agree on the default
    assert settings.stratify_by in settings.dimensions or settings.stratify_by == "department"
    bad = tmp_path / "settings.yaml"
    bad.write_text("method: model_average\ndimensions: [sex, shoe_size]\n")
    with pytest.raises(ValueError, match="unknown dimensions"):
        load_settings(str(bad))
    # a run's latent_class chains are declared: shorter than concilia mse's, and only known keys
    chains = settings.latent_class_chains
    assert chains.chains == 4 and chains.burn_in < LatentClassSettings().burn_in
    bad.write_text("method: latent_class\ndimensions: [sex]\nlatent_class_chains: {chains: 2, steps: 9}\n")
    with pytest.raises(ValueError, match="unknown key latent_class_chains.steps"):
        load_settings(str(bad))
    bad.write_text("method: latent_class\ndimensions: sex\nmin_stratum_persons: 5.5\n")
    with pytest.raises(ValueError, match="dimensions must be a list"):
        load_settings(str(bad))
    bad.write_text("method: latent_class\ndimensions: [sex]\nmin_stratum_persons: 5.5\n")
    with pytest.raises(ValueError, match="min_stratum_persons must be a whole number"):
        load_settings(str(bad))
