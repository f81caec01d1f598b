"""The steward's loop on real runs: run, export the queue, judge, apply, run again; and two periods.

Both start from a copy of the session's sample run (tests/conftest.py) and add one run each; the
judged run is shared with tests/test_delta.py (``judged_rerun``)."""

from __future__ import annotations

import csv
import shutil
from collections import defaultdict

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from tests.conftest import SAMPLE_FEEDS, TEST_RUNNER
from pipelines.cli import main
from pipelines.pipeline import run
from pipelines.privacy import demo_key
from pipelines.steward import decisions as store


def _table(run_dir, folder, columns=None):
    return ds.dataset(f"{run_dir}/{folder}", format="parquet").to_table(columns=columns)


def _persons_of(run_dir) -> dict[str, frozenset]:
    """person_id -> its record uids, both roles."""
    members = defaultdict(set)
    for folder in ("victims", "offenders"):
        t = _table(run_dir, f"harmonised/{folder}", ["record_uid", "person_id"])
        for uid, pid in zip(t.column("record_uid").to_pylist(), t.column("person_id").to_pylist()):
            members[pid].add(uid)
    return {p: frozenset(u) for p, u in members.items()}


def _copy_of(sample_run, tmp_path_factory, name):
    out = tmp_path_factory.mktemp(name) / "out"
    shutil.copytree(sample_run.run_dir.rsplit("/runs/", 1)[0], out)
    return str(out), f"{out}/runs/{sample_run.run_id}"


def judge_and_run_again(out: str, sample_run) -> dict:
    """In ``out``, a copy of the sample run's output root: export the review queue, judge two pairs,
    apply the judgements and run again. Returns what was judged, as JSON (tests/conftest.py shares
    the result as ``judged_rerun``)."""
    before = _persons_of(f"{out}/runs/{sample_run.run_id}")
    person_of = {u: p for p, uids in before.items() for u in uids}
    assert main(["review", "export", "--out", out, "--to", f"{out}/sheet"]) == 0
    rows = store.read_sheet(f"{out}/sheet.csv")
    # the queue asks about a pair the clustering joined through other records: the steward says different
    different = next(r for r in rows if person_of[r["left_uid"]] == person_of[r["right_uid"]])
    different.update(decision="different", who="steward-a", reason="sisters, same name")
    # and knows two records the linkage kept apart are one person: a line the steward adds
    alone = {a: sorted(u for p, uids in before.items() if len(uids) == 1 for u in uids if u.startswith(a))
             for a in ("pnp_victims", "mp_victims")}
    same = {"role": "victim", "run_id": sample_run.run_id, "left_uid": alone["pnp_victims"][0],
            "right_uid": alone["mp_victims"][0], "decision": "same", "who": "steward-b",
            "reason": "same person on the paper file"}
    rows.append(same)
    with open(f"{out}/filled.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["review", "apply", f"{out}/filled.csv", "--out", out]) == 0
    second = run(str(SAMPLE_FEEDS), out, [f"--runner={TEST_RUNNER}"], key=demo_key())
    return {"second_run_id": second.run_id, "same": [same["left_uid"], same["right_uid"]],
            "different": [different["left_uid"], different["right_uid"]], "split": person_of[different["left_uid"]],
            "merged": [person_of[same["left_uid"]], person_of[same["right_uid"]]]}


@pytest.fixture(scope="module")
def loop(judged_rerun, sample_run):
    out, judged = str(judged_rerun.out), judged_rerun.judged
    first, second = f"{out}/runs/{sample_run.run_id}", judged_rerun.run_dir
    return {"out": out, "first": first, "second": second, "before": _persons_of(first),
            "after": _persons_of(second), **{k: tuple(judged[k]) for k in ("same", "different", "merged")},
            "split": judged["split"]}


def test_judged_pairs_are_split_and_merged(loop):
    after = {u: p for p, uids in loop["after"].items() for u in uids}
    a, b = loop["same"]
    assert after[a] == after[b]
    assert loop["after"][after[a]] == loop["before"][loop["merged"][0]] | loop["before"][loop["merged"][1]]
    left, right = loop["different"]
    assert after[left] != after[right]
    assert {after[left], after[right]} & {loop["split"]}, "one side keeps the earlier id"


def test_untouched_persons_keep_their_ids(loop):
    touched = set(loop["merged"]) | {loop["split"]}
    untouched = {p: u for p, u in loop["before"].items() if p not in touched}
    assert len(untouched) > 2000
    assert all(loop["after"].get(p) == uids for p, uids in untouched.items())


def test_lineage_records_the_merge_and_the_split(loop):
    lineage = _table(loop["second"], "lineage").to_pylist()
    changes = {(r["change"], r["old_person_id"]) for r in lineage}
    kept = loop["merged"][0] if loop["merged"][0] in loop["after"] else loop["merged"][1]
    gone = ({*loop["merged"]} - {kept}).pop()
    assert changes == {("merged", gone), ("split", loop["split"])}
    merged = next(r for r in lineage if r["change"] == "merged")
    assert merged["new_person_id"] == kept and merged["records"] == len(loop["before"][gone])


def test_judged_pairs_are_not_asked_again_and_the_evidence_is_kept(loop, capsys):
    queue = store.review_queue(loop["second"])
    asked = {frozenset(p) for p in zip(queue.column("left_uid").to_pylist(), queue.column("right_uid").to_pylist())}
    assert frozenset(loop["same"]) not in asked and frozenset(loop["different"]) not in asked
    first = store.review_queue(loop["first"])
    assert queue.num_rows == first.num_rows - 1
    evidence = [r for role in ("victims", "offenders") for r in _table(loop["second"], f"judgements/{role}").to_pylist()]
    assert sorted(r["decision"] for r in evidence) == ["different", "same"]
    stored = {r["decision"]: r for r in store.read_decisions(store.default_location(loop["out"])).to_pylist()}
    assert stored["different"]["evidence_when_judged"] == "scored_uncertain"  # what the queue showed the steward
    assert stored["different"]["left_agency"] and stored["same"]["right_record_id"]
    assert all(r["evidence"] for r in evidence)
    assert main(["review", "--out", loop["out"]]) == 0
    assert f"{queue.num_rows} of {queue.num_rows} review pair(s) open" in capsys.readouterr().out


def test_the_report_asks_nothing_about_judged_pairs(loop):
    html = open(f"{loop['second']}/reports/index.html", encoding="utf-8").read()
    for pair in (loop["same"], loop["different"]):
        assert not all(uid in html for uid in pair)


def test_a_bad_judgement_file_is_refused_without_quoting_it(loop, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("role,run_id,left_uid,right_uid,decision,who,reason\n"
                   f"victim,{loop['second'].rsplit('/', 1)[1]},nobody:1,nobody:2,same,x,SECRETNAME\n"
                   "victim,r,a,b,maybe,x,\n", encoding="utf-8")
    assert main(["review", "apply", str(bad), "--out", loop["out"]]) == 3
    err = capsys.readouterr().err
    assert "line 2" in err and "line 3" in err and "SECRETNAME" not in err and "nobody" not in err


@pytest.fixture(scope="module")
def two_periods(sample_run, tmp_path_factory):
    """The sample run as the earlier period; MIMP sees the same children again in 2019, under new case codes."""
    out, _ = _copy_of(sample_run, tmp_path_factory, "periods")
    feeds = tmp_path_factory.mktemp("feeds-2019")
    (feeds / "mimp").mkdir()
    text = (SAMPLE_FEEDS / "mimp" / "ninos_victimas_2018.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    again = [lines[0]] + [line.replace("UPE-2018-", "UPE-2019-", 1).replace("CAR-2018-", "CAR-2019-", 1)
                          for line in lines[1:]]
    (feeds / "mimp" / "ninos_victimas_2019.csv").write_text("\n".join(again) + "\n", encoding="utf-8")
    result = run(str(feeds), out, [f"--runner={TEST_RUNNER}"], key=demo_key(), period="2019",
                 allow_missing=("*",))  # only MIMP delivers in this period
    return result, sample_run


def test_a_person_seen_in_both_periods_has_one_id(two_periods):
    result, earlier = two_periods
    persons = _table(result.run_dir, "persons")
    victims = persons.filter(pc.equal(persons.column("role"), "victim"))
    both = victims.filter(pc.and_(pc.equal(victims.column("first_period_seen"), "2018"),
                                  pc.equal(victims.column("last_period_seen"), "2019")))
    assert both.num_rows == victims.num_rows > 100  # every child was recorded in 2018 already
    assert pc.all(both.column("seen_in_earlier_period")).as_py()
    earlier_ids = set(_table(earlier.run_dir, "persons", ["person_id"]).column("person_id").to_pylist())
    assert set(both.column("person_id").to_pylist()) <= earlier_ids
    overlap = _table(result.run_dir, "overlap")
    seen = overlap.filter(overlap.column("seen_in_earlier_period"))
    assert pc.sum(seen.column("persons")).as_py() == both.num_rows
    public = open(f"{result.run_dir}/public/victims_by_seen_in_earlier_period.csv", encoding="utf-8").read().splitlines()
    assert next(line for line in public if line.startswith("true,")).split(",")[-1] == str(both.num_rows)
    registry = _table(result.run_dir, "restricted/registry/victims", ["record_uid", "delivery_period", "person_id"])
    assert set(registry.column("delivery_period").to_pylist()) == {"", "2019"}
    assert all(u.startswith("R") for u in registry.column("record_uid").to_pylist())
