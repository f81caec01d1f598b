"""Deterministic, seeded sample feeds: Peru 2018 as the agencies recorded it.

    from pipelines.sample import generate
    expected = generate("sample_feeds", seed=2018)            # the seed report's figures, exactly
    generate("/tmp/bench", seed=1, people=1_000_000)          # ~1M records, same proportions

Writes, under `out` (a local path or an fsspec URL):
  pnp/victimas_2018.csv, pnp/detenidos_2018.csv, pnp/resumen_victimas_2018.csv (control totals),
  mp/agraviados_2018.jsonl, mp/investigados_2018.jsonl, mimp/ninos_victimas_2018.csv,
  sunafil/hallazgos_2018.csv, pj/sentencias_2018.csv — each as its contract in schemas/feeds/ says —
  and the ground truth in _truth/ (records.csv, population.csv, expected.json), which the pipeline
  never reads.

With people=None every feed holds exactly the valid rows its agency reported in the 2019 US TIP report
(plus a handful of planted invalid rows, listed in the truth); with people=N the world is scaled so the
feeds hold about N records in total.
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np

from .feeds import BUILDERS, false_name
from .world import BASE_ROWS, DOC_CODES, EXPLOITATION, NATIONALITIES, NICKNAMES, build_world, completed_years, rng_for, ymd
from .writers import Root, plan_invalid, write_feed, write_text

__all__ = ["generate", "FEED_ORDER"]

FEED_ORDER = list(BASE_ROWS)
AGENCY = {"pnp_victims": "PNP", "pnp_detainees": "PNP", "mp_victims": "MP", "mp_investigated": "MP",
          "mimp_child_victims": "MIMP", "sunafil_findings": "SUNAFIL", "pj_convictions": "PJ"}
TRUTH_RECORD_COLUMNS = ["feed_id", "source_file", "source_record_id", "source_row", "person_key", "role",
                        "planted_invalid_reason"]
POPULATION_COLUMNS = ["person_key", "role", "sex", "birth_date", "age_at_first_event", "nationality",
                      "exploitation_type", "given_names", "paternal_surname", "maternal_surname",
                      "document_type", "document_number", "seen_by", "aliases"]


class _TextSink:
    """csv writer into an fsspec binary file, flushed in chunks."""

    def __init__(self, fh):
        self.fh, self.buf = fh, io.StringIO()
        self.w = csv.writer(self.buf, lineterminator="\n")

    def writerow(self, row):
        self.w.writerow(row)

    def writerows(self, rows):
        self.w.writerows(rows)
        if self.buf.tell() > 1 << 20:
            self.flush()

    def flush(self):
        self.fh.write(self.buf.getvalue().encode("utf-8"))
        self.buf.seek(0)
        self.buf.truncate()

    def close(self):
        self.flush()
        self.fh.close()


def generate(out: str, seed: int = 2018, people: int | None = None) -> dict:
    """Write the sample feeds and their ground truth under `out`; return expected.json's content."""
    if people is not None and int(people) < 1:
        raise ValueError("people must be a positive number of records")
    w = build_world(seed, people)
    A = w.arrays
    root = Root(out)
    keys = _person_keys(w)

    truth = _TextSink(root.open("_truth/records.csv"))
    truth.writerow(TRUTH_RECORD_COLUMNS)
    feeds, planted_all = {}, {}
    first_date = A["d0"].copy()
    seen_by = {a: np.zeros(w.n, bool) for a in sorted(set(AGENCY.values()))}
    foreign_seen = np.zeros(w.n, bool)
    ven_seen = np.zeros(w.n, bool)
    for fid in FEED_ORDER:
        fd = BUILDERS[fid](w, seed)
        planted = plan_invalid(fd.spec, fd.n, rng_for(seed, fid + "/invalid"))
        write_feed(root, fd, planted, keys, truth)
        seen_by[AGENCY[fid]][fd.persons] = True
        if fd.victim_nat is not None:
            foreign_seen[fd.persons[fd.victim_nat > 0]] = True
            ven_seen[fd.persons[fd.victim_nat == 1]] = True
        feeds[fid] = fd.figures
        planted_all[fid] = [{"row": p.position + 1, "reason": p.reason, "detail": p.detail} for p in planted]
        del fd
    truth.close()

    pnp = feeds["pnp_victims"]
    write_text(root, "pnp/resumen_victimas_2018.csv",
               "INDICADOR;VALOR\r\n"
               f"TOTAL_VICTIMAS;{pnp['rows']}\r\nVICTIMAS_MENORES;{pnp['children']}\r\n"
               f"VICTIMAS_ADULTAS;{pnp['adults']}\r\n", "latin-1")

    seen_any = np.zeros(w.n, bool)
    for m in seen_by.values():
        seen_any |= m
    V = A["victim"]
    _write_population(root, w, keys, seen_by)
    expected = {
        "seed": seed,
        "people": people,
        "scale": round(w.scale, 6),
        "valid_rows": {fid: feeds[fid]["rows"] for fid in FEED_ORDER},
        "planted_invalid_rows": {fid: len(planted_all[fid]) for fid in FEED_ORDER},
        "total_valid_rows": int(sum(feeds[fid]["rows"] for fid in FEED_ORDER)),
        "figures": {
            "pnp_victims": {"total": pnp["rows"], "children": pnp["children"], "adults": pnp["adults"]},
            "pnp_detainees": {"total": feeds["pnp_detainees"]["rows"]},
            "mp_victims": {k: feeds["mp_victims"][k] for k in ("rows", "women", "men", "children", "unknown_age")},
            "mp_investigated": {"total": feeds["mp_investigated"]["rows"],
                                "detained": feeds["mp_investigated"]["detained"]},
            "mimp_child_victims": {k: feeds["mimp_child_victims"][k] for k in ("rows", "girls", "boys", "children")},
            "sunafil_findings": {"total": feeds["sunafil_findings"]["rows"],
                                 "domestic_work": feeds["sunafil_findings"]["domestic_work"]},
            "pj_convictions": {"total": feeds["pj_convictions"]["rows"]},
            "foreign_victims_distinct": int((foreign_seen & V).sum()),
            "venezuelan_victims_distinct": int((ven_seen & V).sum()),
            "la_pampa": {"atestado": str(w.cases["atestado"][w.la_pampa_case]), "ubigeo": str(w.cases["ub_inei"][w.la_pampa_case]),
                         "pnp_victims": pnp["la_pampa"], "mp_victims": feeds["mp_victims"]["la_pampa"],
                         "mp_victims_citing_atestado": feeds["mp_victims"]["la_pampa_citing"]},
        },
        "persons": {
            "victims": int(V.sum()),
            "victims_seen": int((V & seen_any).sum()),
            "victims_unseen": int((V & ~seen_any).sum()),
            "victims_pnp": int((V & seen_by["PNP"]).sum()),
            "victims_mp": int((V & seen_by["MP"]).sum()),
            "victims_pnp_and_mp": int((V & seen_by["PNP"] & seen_by["MP"]).sum()),
            "offenders": int((~V).sum()),
        },
        "counting_rule": "child if age at event < 18; age = completed years between the row's birth date "
                         "and the row's event date when the birth date is present and parses, else the age column",
        "planted": planted_all,
    }
    write_text(root, "_truth/expected.json", json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    return expected


def _person_keys(w) -> list[str]:
    V = w.arrays["victim"]
    vk = np.cumsum(V)
    ok = np.cumsum(~V)
    return [f"V{a:07d}" if v else f"O{b:07d}" for v, a, b in zip(V.tolist(), vk.tolist(), ok.tolist())]


def _write_population(root, w, keys, seen_by) -> None:
    A, pool, docs = w.arrays, w.strings["names"], w.strings["doc"]
    birth = A["birth"]
    by, bm, bd = ymd(birth)
    # age at the first event the person is involved in (the case date)
    ey, em, ed = ymd(A["d0"])
    age = completed_years(by, bm, bd, ey, em, ed)
    bstr = np.datetime_as_string(birth, unit="D").tolist()
    agencies = sorted(seen_by)
    sink = _TextSink(root.open("_truth/population.csv"))
    sink.writerow(POPULATION_COLUMNS)
    masks = [seen_by[a] for a in agencies]
    seen = ["|".join(a for a, m in zip(agencies, flags) if m) for flags in zip(*[m.tolist() for m in masks])]
    def aliases(i: int) -> str:  # the nickname and the false name given at arrest, "|"-separated
        nick, given = A["nick"][i], false_name(w, i)
        return "|".join(([NICKNAMES[nick]] if nick >= 0 else []) + ([" ".join(x for x in given if x)] if given else []))

    rows = []
    for i in range(w.n):
        v = A["victim"][i]
        g2 = A["g2"][i]
        m = A["mat"][i]
        t = A["doc_type"][i]
        rows.append((keys[i], "victim" if v else "offender", "FEMALE" if A["female"][i] else "MALE", bstr[i],
                     int(age[i]), NATIONALITIES[A["nat"][i]], EXPLOITATION[A["expl"][i]] if v else "",
                     pool[A["g1"][i]] + (" " + pool[g2] if g2 >= 0 else ""), pool[A["pat"][i]],
                     pool[m] if m >= 0 else "", DOC_CODES[t] if t >= 0 else "", docs[i], seen[i], aliases(i)))
        if len(rows) >= 20000:
            sink.writerows(rows)
            rows = []
    sink.writerows(rows)
    sink.close()
