"""The sample-feed generator: determinism, the seed report's figures measured on the written files
(parsed here with csv/json, independently of the pipeline), planted invalid rows, ground truth."""
from __future__ import annotations

import csv
import fnmatch
import hashlib
import io
import json
import re
import time
from collections import Counter, defaultdict
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from stdnum.pe import cui

from pipelines.sample import generate
from pipelines.sample.cli import sample_main

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = sorted((REPO / "schemas" / "feeds").glob("*/*.yaml"))


def _contracts():
    out = {}
    for p in CONTRACTS:
        c = yaml.safe_load(p.read_text(encoding="utf-8"))
        out[c["feed"]] = c
    return out


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    expected = generate(str(out), seed=2018)
    return out, expected


def _read_raw(root: Path, contract: dict):
    """(file relpath, header, rows as (row_number, dict | None)) — None for a malformed row."""
    src = contract["source"]
    files = [p for p in root.rglob("*") if p.is_file()
             and fnmatch.fnmatch(p.relative_to(root).as_posix(), src["files"])]
    assert len(files) == 1, (contract["feed"], files)
    f = files[0]
    rel = f.relative_to(root).as_posix()
    text = f.read_bytes().decode(src["encoding"])
    if src["encoding"] == "utf-8-sig":
        assert f.read_bytes().startswith(b"\xef\xbb\xbf")
        assert text.count("\ufeff") == 0
    rows = []
    if src["format"] == "jsonl":
        header = None
        for i, line in enumerate(text.splitlines(), start=1):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                rows.append((i, None))
                continue
            header = header or list(obj)
            # a nested object is read through the contract's paths ("documento.numero")
            obj.update({f"{k}.{kk}": vv for k, v in list(obj.items()) if isinstance(v, dict) for kk, vv in v.items()})
            rows.append((i, obj))
        return rel, header, rows
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=src["delimiter"])
    header = next(reader)
    for i, rec in enumerate(reader, start=1):
        rows.append((i, dict(zip(header, rec)) if len(rec) == len(header) else None))
    return rel, header, rows


def _contract_columns(c: dict) -> set[str]:
    cols = {c["record_id"], *c.get("ignore_columns", [])}
    for spec in c["fields"].values():
        for k in ("column", "given_names", "paternal_surname", "maternal_surname", "surnames",
                  "number_column", "type_column"):
            if k in spec:
                cols.add(re.split(r"[.\[]", spec[k])[0])  # a path (documento.numero, alias[]) starts from a top-level key
    return cols


def _date(text, fmt):
    if text in (None, ""):
        return None
    return datetime.strptime(text, fmt).date()


def _years(b: date, e: date) -> int:
    return e.year - b.year - ((e.month, e.day) < (b.month, b.day))


def _age_at_event(row, c):
    """The pipeline's counting rule: age from the written birth date if present and valid, else the age."""
    f = c["fields"]
    ev = _date(row[f["event_date"]["column"]], f["event_date"]["formats"][0])
    if "birth_date" in f:
        b = row.get(f["birth_date"]["column"])
        if b not in (None, ""):
            return _years(_date(b, f["birth_date"]["formats"][0]), ev)
    a = row.get(f["age"]["column"])
    return None if a in (None, "") else int(a)


@pytest.fixture(scope="module")
def parsed(sample):
    root, _ = sample
    truth = defaultdict(dict)
    with open(root / "_truth" / "records.csv", encoding="utf-8", newline="") as fh:
        for r in csv.DictReader(fh):
            truth[r["source_file"]][int(r["source_row"])] = r
    out = {}
    for feed, c in _contracts().items():
        rel, header, rows = _read_raw(root, c)
        out[feed] = {"contract": c, "file": rel, "header": header, "rows": rows, "truth": truth[rel]}
    return out


def _valid(p):
    return [(i, r) for i, r in p["rows"] if not p["truth"][i]["planted_invalid_reason"]]


def test_deterministic(tmp_path):
    def digest(root: Path):
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file()}

    generate(str(tmp_path / "a"), seed=2018)
    generate(str(tmp_path / "b"), seed=2018)
    generate(str(tmp_path / "c"), seed=2019)
    a, b, c = digest(tmp_path / "a"), digest(tmp_path / "b"), digest(tmp_path / "c")
    assert a == b
    assert a["pnp/victimas_2018.csv"] != c["pnp/victimas_2018.csv"]


def test_files_follow_contracts(parsed):
    for feed, p in parsed.items():
        c = p["contract"]
        assert set(p["header"]) == _contract_columns(c), feed
        for _, row in _valid(p):
            assert row is not None
            for name, spec in c["fields"].items():
                if "lookup" in spec and row.get(spec["column"]) not in (None, ""):
                    assert str(row[spec["column"]]) in c["lookups"][spec["lookup"]], (feed, name)
                if "type_lookup" in spec and row.get(spec["type_column"]) not in (None, ""):
                    assert row[spec["type_column"]] in c["lookups"][spec["type_lookup"]], (feed, name)


def test_seed_figures_under_counting_rule(parsed, sample):
    _, expected = sample
    counts = {f: len(_valid(p)) for f, p in parsed.items()}
    assert counts == {"pnp_victims": 1600, "pnp_detainees": 423, "mp_victims": 882, "mp_investigated": 800,
                      "mimp_child_victims": 128, "sunafil_findings": 8, "pj_convictions": 46}
    assert counts == expected["valid_rows"]

    def ages(feed):
        p = parsed[feed]
        return [_age_at_event(r, p["contract"]) for _, r in _valid(p)]

    pnp = ages("pnp_victims")
    assert sum(a < 18 for a in pnp if a is not None) == 287
    assert sum(a >= 18 for a in pnp if a is not None) == 1313

    mp_rows = [r for _, r in _valid(parsed["mp_victims"])]
    assert Counter(r["sexo"] for r in mp_rows) == {"F": 738, "M": 144}
    assert sum(a < 18 for a in ages("mp_victims") if a is not None) == 374

    mimp_rows = [r for _, r in _valid(parsed["mimp_child_victims"])]
    assert Counter(r["SEXO"] for r in mimp_rows) == {"2": 112, "1": 16}  # 2 = girls
    assert all(a is not None and a < 18 for a in ages("mimp_child_victims"))

    sun = [r for _, r in _valid(parsed["sunafil_findings"])]
    assert [r["SECTOR"] for r in sun] == ["TRABAJO DOMESTICO"] * 8

    inv = [r for _, r in _valid(parsed["mp_investigated"])]
    assert sum(r["situacion"] == "DETENIDO" for r in inv) == 142

    for feed in ("pnp_detainees", "mp_investigated", "pj_convictions"):
        assert all(a is not None and 16 <= a <= 90 for a in ages(feed)), feed

    summary = {}
    with open(sample[0] / "pnp" / "resumen_victimas_2018.csv", encoding="latin-1", newline="") as fh:
        rd = csv.reader(fh, delimiter=";")
        assert next(rd) == ["INDICADOR", "VALOR"]
        summary = {k: int(v) for k, v in rd}
    assert summary == {"TOTAL_VICTIMAS": 1600, "VICTIMAS_MENORES": 287, "VICTIMAS_ADULTAS": 1313}


def test_foreign_victims_and_la_pampa(parsed, sample):
    _, expected = sample
    foreign, ven = set(), set()
    for feed, col, per in [("pnp_victims", "NACIONALIDAD", "PERU"), ("mp_victims", "pais_nacionalidad", "PER"),
                           ("mimp_child_victims", "NACIONALIDAD", "PERUANA"),
                           ("sunafil_findings", "NACIONALIDAD", "Perú")]:
        p = parsed[feed]
        for i, r in _valid(p):
            v = r[col]
            if v not in (None, "", per):
                key = p["truth"][i]["person_key"]
                foreign.add(key)
                if v.upper().startswith("VEN"):
                    ven.add(key)
    assert len(foreign) == 235 == expected["figures"]["foreign_victims_distinct"]
    assert len(ven) == 102 == expected["figures"]["venezuelan_victims_distinct"]

    p = parsed["pnp_victims"]
    refs = Counter(r["NRO_ATESTADO"] for _, r in _valid(p))
    ref, n = refs.most_common(1)[0]
    assert n == 96 and ref == expected["figures"]["la_pampa"]["atestado"]
    raid = [r for _, r in _valid(p) if r["NRO_ATESTADO"] == ref]
    assert {r["FECHA_HECHO"][3:] for r in raid} == {"05/2018"}
    assert {r["UBIGEO_HECHO"] for r in raid} <= {"170102", ""}
    digits = "".join(ch for ch in ref if ch.isalnum())
    cited = [r for _, r in _valid(parsed["mp_victims"])
             if r["nro_atestado_policial"] and
             "".join(ch for ch in r["nro_atestado_policial"].upper() if ch.isalnum()).endswith(digits)]
    assert len(cited) >= 50


def test_identity_values(parsed):
    checked = valid_checks = 0
    for feed, p in parsed.items():
        c = p["contract"]
        doc = c["fields"].get("document", {})
        for _, r in _valid(p):
            num = r.get(doc.get("number_column"))
            typ = r.get(doc.get("type_column")) if "type_column" in doc else None
            is_dni = doc.get("type") == "01" or typ in ("DNI", "1")
            if num and is_dni:
                if doc.get("restore_leading_zeros"):
                    assert num.isdigit() and not num.startswith("0") and len(num) <= 8
                else:
                    assert re.fullmatch(r"\d{8}(-[0-9A-K])?", num), feed
                    if len(num) > 8:  # a typo in the digits makes the check character fail, as it should
                        checked += 1
                        valid_checks += cui.is_valid(num)
    assert checked > 50 and valid_checks / checked > 0.9


def test_planted_invalid_rows(parsed, sample):
    _, expected = sample
    for feed, p in parsed.items():
        c = p["contract"]
        f = c["fields"]
        rid = c["record_id"]
        reasons = Counter(t["planted_invalid_reason"] for t in p["truth"].values() if t["planted_invalid_reason"])
        kinds = {"missing_record_id", "duplicate_record_id", "invalid_date", "invalid_age", "malformed_row"}
        assert set(reasons) == kinds, feed
        assert sum(reasons.values()) == expected["planted_invalid_rows"][feed]
        seen_ids = set()
        for i, row in p["rows"]:
            why = p["truth"][i]["planted_invalid_reason"]
            if why == "malformed_row":
                assert row is None, (feed, i)
                continue
            assert row is not None, (feed, i)
            the_id = row[rid]
            if why == "missing_record_id":
                assert the_id in (None, "")
                continue
            assert the_id not in (None, "")
            if why == "duplicate_record_id":
                assert the_id in seen_ids
                continue
            assert the_id not in seen_ids, (feed, i)
            seen_ids.add(the_id)
            dates_ok = True
            for name in ("event_date", "birth_date"):
                if name in f and row.get(f[name]["column"]) not in (None, ""):
                    try:
                        _date(row[f[name]["column"]], f[name]["formats"][0])
                    except ValueError:
                        dates_ok = False
            assert dates_ok == (why != "invalid_date"), (feed, i, why)
            a = row.get(f["age"]["column"])
            age_ok = a in (None, "") or (str(a).isdigit() and 0 <= int(a) <= 110)
            assert age_ok == (why != "invalid_age"), (feed, i, why)
            if why == "invalid_age":
                assert row.get(f.get("birth_date", {}).get("column")) in (None, "")


def test_truth_consistent(parsed, sample):
    root, expected = sample
    with open(root / "_truth" / "population.csv", encoding="utf-8", newline="") as fh:
        pop = {r["person_key"]: r for r in csv.DictReader(fh)}
    for feed, p in parsed.items():
        rows = p["rows"]
        assert sorted(p["truth"]) == [i for i, _ in rows] == list(range(1, len(rows) + 1))
        rid = p["contract"]["record_id"]
        for i, row in rows:
            t = p["truth"][i]
            assert t["feed_id"] == feed and t["role"] == p["contract"]["role"]
            assert t["person_key"] in pop
            if row is not None:
                assert (row[rid] or "") == t["source_record_id"]
    victims = [r for r in pop.values() if r["role"] == "victim"]
    unseen = [r for r in victims if not r["seen_by"]]
    assert len(unseen) == expected["persons"]["victims_unseen"] > 0
    # positive dependence between the police and prosecutor lists
    pnp = [r for r in victims if "PNP" in r["seen_by"].split("|")]
    not_pnp = [r for r in victims if "PNP" not in r["seen_by"].split("|")]
    p_mp_given_pnp = sum("MP" in r["seen_by"].split("|") for r in pnp) / len(pnp)
    p_mp_given_not = sum("MP" in r["seen_by"].split("|") for r in not_pnp) / len(not_pnp)
    assert p_mp_given_pnp > p_mp_given_not
    # persons registered twice by the same agency
    per_feed = Counter((t["feed_id"], t["person_key"]) for p in parsed.values() for t in p["truth"].values()
                       if not t["planted_invalid_reason"])
    assert any(n > 1 for n in per_feed.values())


def test_scaled_world_and_cli(tmp_path, capsys):
    t0 = time.perf_counter()
    assert sample_main(["--out", str(tmp_path / "s"), "--seed", "5", "--people", "20000"]) == 0
    elapsed = time.perf_counter() - t0
    assert elapsed < 20
    expected = json.loads((tmp_path / "s" / "_truth" / "expected.json").read_text(encoding="utf-8"))
    assert abs(expected["total_valid_rows"] - 20000) <= 200
    assert expected["people"] == 20000
    lines = sum(1 for p in (tmp_path / "s").rglob("*") if p.is_file() and "_truth" not in p.parts
                and "resumen" not in p.name for _ in p.open("rb"))
    assert abs(lines - 20000) <= 300
    out = capsys.readouterr().out
    assert "20000" not in out or "valid" in out


@pytest.mark.parametrize("argv", [[], ["--out"], ["--out", "x", "--people", "abc"], ["--out", "x", "--people", "0"],
                                  ["--out", "x", "--seed", "-1"], ["--out", "x", "--bogus"]])
def test_cli_bad_arguments(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        sample_main(argv)
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert err and "\n" not in err
