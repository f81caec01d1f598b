"""Delivery verdicts (pipelines.verdicts) and the control-total tolerance: what blocks a run."""

from __future__ import annotations

import pytest

from pipelines import checks
from pipelines.contracts import ContractError, parse_contract
from pipelines.publish import assertion_checks, with_run_checks
from pipelines.verdicts import delivery_check, file_verdict
from tests.test_checks import CONFIG, summary, tables, victims

BASE = {"feed": "hx_victims", "agency": "HX", "role": "victim", "record_id": "ID",
        "source": {"files": "hx/*.csv", "format": "csv"}, "fields": {"case_ref": {"column": "CASO"}},
        "assertions": {"min_rows": 3}, "delivery": {"required": True}}


def contract(**delivery):
    return parse_contract({**BASE, "delivery": {"required": True, **delivery}})


def stats(**kw):
    return {"source_file": "hx/a.csv", "rows_read": 100, "file_rejected": None, "missing_columns": [], **kw}


def feed(*verdicts_, harmonised=10):
    return {"files": [{"source_file": f"hx/{i}.csv", "verdict": {"verdict": v, "reasons": ["why"]}}
                      for i, v in enumerate(verdicts_)], "rows_harmonised": harmonised}


def test_file_verdicts_follow_the_declared_shares():
    c = contract()
    assert file_verdict(stats(), c) == {"verdict": "accepted", "reasons": []}
    assert file_verdict(stats(), c, unreadable_lines=5)["verdict"] == "accepted_with_warnings"
    assert file_verdict(stats(), c, unreadable_lines=6)["verdict"] == "rejected"
    assert file_verdict(stats(contradicting_rows=6), c)["verdict"] == "rejected"
    assert file_verdict(stats(contradicting_rows=6), contract(block_share=0.1))["verdict"] == "accepted_with_warnings"
    assert file_verdict(stats(rows_read=10), c, unreadable_lines=4)["verdict"] == "accepted_with_warnings"  # too few rows
    assert file_verdict(stats(encoding_suspect_lines=1), contract(warn_share=0.02))["verdict"] == "accepted"
    assert file_verdict(stats(rows_read=0), c)["verdict"] == "rejected"
    assert file_verdict(stats(missing_columns=["CASO"]), c)["verdict"] == "rejected"


@pytest.mark.parametrize("entry,allow,blocked_by", [
    (feed("accepted", "accepted_with_warnings"), (), None),
    (feed("accepted", "rejected"), (), "hx/1.csv rejected"),
    (feed("accepted", harmonised=2), (), None),  # a short feed is a contract assertion (below)
    (None, (), "required feed not delivered"),
    (None, ("hx_victims",), None),
    (None, ("*",), None),
])
def test_a_rejected_file_or_a_missing_required_feed_blocks(entry, allow, blocked_by):
    check = delivery_check({"hx_victims": entry} if entry else {}, [contract()], allow)
    assert check["severity"] == "blocking"
    if blocked_by is None:
        assert check["status"] == "passed"
    else:
        assert check["status"] == "failed" and blocked_by in check["detail"]


def test_row_count_assertions_carry_their_severity_and_a_blocking_one_blocks():
    plain = contract()  # min_rows: 3, no severity given: blocking by default
    declared = parse_contract({**BASE, "assertions": {"min_rows": {"value": 3, "severity": "warning"},
                                                      "max_rows": {"value": 5, "severity": "warning"}}})
    assert [(a.name, a.bound, a.severity) for a in declared.assertions] == [("min_rows", 3, "warning"),
                                                                             ("max_rows", 5, "warning")]
    short = {"hx_victims": feed("accepted", harmonised=2)}
    [blocking] = assertion_checks(short, [plain])
    assert (blocking["severity"], blocking["status"], blocking["findings"]) == ("blocking", "failed", 1)
    assert "harmonised rows 2 < min_rows 3" in blocking["detail"]
    validation = with_run_checks(None, short, [plain])
    assert validation["blocking_failed"] is True  # the publish stops (ValidationBlocked: exit 6)
    assert [c["name"] for c in validation["checks"]] == ["delivery", "contract_assertions"]
    warned = with_run_checks({"suites": {}, "checks": [], "blocking_failed": False},
                             {"hx_victims": feed("accepted", harmonised=9)}, [declared])
    assert not warned["blocking_failed"]
    assert [(c["severity"], c["status"]) for c in warned["checks"][1:]] == [("warning", "failed")]
    assert with_run_checks(None, {"hx_victims": feed("accepted", harmonised=4)}, [declared]) is None
    assert with_run_checks(None, {}, [parse_contract({**BASE, "delivery": {}})]) is None  # nothing delivered


def test_contract_assertion_severity_must_be_known():
    with pytest.raises(ContractError):
        parse_contract({**BASE, "assertions": {"max_rows": {"value": 5, "severity": "fatal"}}})


def test_a_control_total_beyond_the_tolerance_blocks_a_small_difference_warns():
    v = victims(*({"child_adult": "ADULT"},) * 99)
    spec = CONFIG["control_totals"]
    assert spec["block_beyond_share"] == 0.02
    declared = {"TOTAL_VICTIMAS": 100, "VICTIMAS_MENORES": 0, "VICTIMAS_ADULTAS": 100}
    near = checks.CHECKS["control_totals"](tables(v, control=[summary(declared)]), spec, "control_totals")
    assert (near.status, near.severity) == ("failed", "warning")
    # a truncated delivery: half the declared victims arrived
    far = checks.CHECKS["control_totals"](tables(v, control=[summary({**declared, "TOTAL_VICTIMAS": 200})]), spec, "control_totals")
    assert (far.status, far.severity) == ("failed", "blocking") and "beyond the 2%" in far.detail
    missing = checks.CHECKS["control_totals"](tables(v, control=[summary({**declared, "TOTAL_VICTIMAS": None})]), spec, "control_totals")
    assert missing.severity == "blocking"
