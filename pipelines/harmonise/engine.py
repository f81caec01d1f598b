"""The contract interpreter: raw string columns -> harmonised victim or offender records.

Each contract field names a parser; each parser is a pure, vectorised normaliser from this
package. A row whose non-empty value cannot be parsed (a date, an age) is quarantined with
the field and reason; unknown code values become null and are counted, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import model, quarantine
from pipelines.contracts import Contract, FieldSpec
from pipelines.harmonise import ages, countries, dates, documents, lookups, names, offences, places, references
from pipelines.harmonise.vector import clean
from pipelines.read import SOURCE_FILE, SOURCE_ROW

TABLE_OF_ROLE = {"victim": "victim", "offender": "offender"}


@dataclass
class HarmoniseResult:
    records: pa.Table
    quarantined: pa.Table
    # harmonised field -> raw value -> count, for code values no lookup knew
    unmapped_values: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class _Work:
    raw: pa.Table
    contract: Contract
    columns: dict[str, pa.Array] = field(default_factory=dict)
    problems: list[tuple[str, str, str, pa.Array]] = field(default_factory=list)  # (field, code, detail, mask)
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    reported_age: pa.Array | None = None

    def source(self, column: str) -> pa.Array:
        return clean(self.raw.column(column).combine_chunks())

    def flag(self, target: str, code: str, detail: str, mask: pa.Array) -> None:
        if pc.any(mask).as_py():
            self.problems.append((target, code, detail, mask))

    def note_unmapped(self, target: str, values: dict[str, int]) -> None:
        if values:
            bucket = self.unmapped.setdefault(target, {})
            for value, count in values.items():
                bucket[value] = bucket.get(value, 0) + count


def _text(w: _Work, spec: FieldSpec) -> None:
    w.columns[spec.target] = w.source(spec.options["column"])


def _reference(w: _Work, spec: FieldSpec) -> None:
    w.columns[spec.target] = references.normalise_reference(w.source(spec.options["column"]))


def _date(w: _Work, spec: FieldSpec) -> None:
    formats = spec.options.get("formats") or ["%Y-%m-%d"]
    values, problems = dates.parse_dates(w.source(spec.options["column"]), formats)
    w.columns[spec.target] = values
    w.flag(spec.target, "invalid_date", f"{spec.target}: not a valid date in the format {' or '.join(formats)}",
           pc.is_valid(problems))


def _age(w: _Work, spec: FieldSpec) -> None:
    values, problems = ages.parse_ages(w.source(spec.options["column"]))
    w.reported_age = values
    w.flag("age", "invalid_age", "age: not a whole number of years between 0 and 110", pc.is_valid(problems))


def _country(w: _Work, spec: FieldSpec) -> None:
    raw = w.source(spec.options["column"])
    w.columns[spec.target] = countries.to_iso3(raw)
    w.note_unmapped(spec.target, countries.unmapped_values(raw))


def _ubigeo(w: _Work, spec: FieldSpec) -> None:
    result = places.to_inei_ubigeo(
        w.source(spec.options["column"]),
        spec.options.get("list", "INEI"),
        bool(spec.options.get("restore_leading_zeros", False)),
    )
    for name in result.column_names:
        w.columns[name] = result.column(name).combine_chunks()
    unknown = pc.and_(pc.is_valid(w.columns["ubigeo_raw"]), pc.is_null(w.columns["ubigeo"]))
    if pc.any(unknown).as_py():
        counts = pc.value_counts(pc.filter(w.columns["ubigeo_raw"], unknown)).to_pylist()
        w.note_unmapped("ubigeo", {c["values"]: c["counts"] for c in counts})


def _statute(w: _Work, spec: FieldSpec) -> None:
    event_dates = w.columns.get("event_date", pa.nulls(w.raw.num_rows, pa.date32()))
    raw = w.source(spec.options["column"])
    result = offences.canonical_offences(raw, event_dates)
    w.columns["offence"] = result.column("offence").combine_chunks()
    w.columns["statute_article"] = result.column("statute_article").combine_chunks()
    unknown = pc.and_(pc.is_valid(raw), pc.is_null(w.columns["offence"]))
    if pc.any(unknown).as_py():
        counts = pc.value_counts(pc.filter(raw, unknown)).to_pylist()
        w.note_unmapped("offence", {c["values"]: c["counts"] for c in counts})


def _name(w: _Work, spec: FieldSpec) -> None:
    o = spec.options
    style = o["style"]
    if style in ("surnames_comma_given", "given_then_surnames"):
        parts = names.split_full_name(w.source(o["column"]), style)
        given, paternal, maternal = (parts.column(c).combine_chunks()
                                     for c in ("given_names", "paternal_surname", "maternal_surname"))
    elif style == "given_and_surnames":
        given = w.source(o["given_names"])
        paternal, maternal = names.split_surnames(w.source(o["surnames"]))
    else:  # parts
        given = w.source(o["given_names"])
        paternal = w.source(o["paternal_surname"])
        maternal = w.source(o["maternal_surname"]) if o.get("maternal_surname") else pa.nulls(len(given), pa.string())
    w.columns["given_names"] = names.normalise_name_part(given)
    w.columns["paternal_surname"] = names.normalise_name_part(paternal)
    w.columns["maternal_surname"] = names.normalise_name_part(maternal)


def _document(w: _Work, spec: FieldSpec) -> None:
    o = spec.options
    n = w.raw.num_rows
    if o.get("type_column"):
        raw_types = w.source(o["type_column"])
        if o.get("type_lookup"):
            types, unmapped = lookups.apply_lookup(raw_types, w.contract.lookups[o["type_lookup"]])
            w.note_unmapped("document_type", unmapped)
        else:
            types = raw_types
    else:
        types = pa.array([o.get("type")] * n, pa.string())
    result = documents.normalise_documents(
        types.cast(pa.string()), w.source(o["number_column"]), bool(o.get("restore_leading_zeros", False))
    )
    for name in ("document_type", "document_number", "document_valid"):
        w.columns[name] = result.column(name).combine_chunks()


def _lookup(w: _Work, spec: FieldSpec) -> None:
    mapped, unmapped = lookups.apply_lookup(w.source(spec.options["column"]), w.contract.lookups[spec.options["lookup"]])
    w.columns[spec.target] = mapped
    w.note_unmapped(spec.target, unmapped)


def _constant(w: _Work, spec: FieldSpec) -> None:
    w.columns[spec.target] = pa.array([spec.options["value"]] * w.raw.num_rows)


PARSERS = {
    "text": _text, "reference": _reference, "date": _date, "age": _age, "country": _country,
    "ubigeo": _ubigeo, "statute": _statute, "name": _name, "document": _document,
    "lookup": _lookup, "constant": _constant,
}


def _derive_ages(w: _Work) -> None:
    """Age at the event: from the birth date when both dates are known, else the reported age."""
    n = w.raw.num_rows
    birth = w.columns.get("birth_date", pa.nulls(n, pa.date32()))
    event = w.columns.get("event_date", pa.nulls(n, pa.date32()))
    computed = dates.age_in_years(birth, event)
    negative = pc.fill_null(pc.less(computed, 0), False)
    w.flag("birth_date", "invalid_date", "birth_date: after the event date", negative)
    computed = pc.if_else(negative, pa.scalar(None, pa.int32()), computed)
    reported = w.reported_age if w.reported_age is not None else pa.nulls(n, pa.int32())
    age = pc.coalesce(computed.cast(pa.int32()), reported.cast(pa.int32()))
    w.columns["age_at_event"] = age
    w.columns["age_source"] = pc.if_else(
        pc.is_valid(computed), "birth_date", pc.if_else(pc.is_valid(reported), "reported", pa.scalar(None, pa.string()))
    )
    w.columns["age_group"] = ages.age_groups(age)
    w.columns["child_adult"] = ages.child_adult(age)
    w.columns["age_broad"] = ages.age_broad(age)
    w.columns["event_year"] = dates.year(event)


def _order(spec: FieldSpec) -> int:
    # statutes are read with the law in force on the event date, so after the dates
    return 1 if spec.parser == "statute" else 0


def harmonise(contract: Contract, raw: pa.Table) -> HarmoniseResult:
    """Map one raw table (a chunk of one delivered file) onto the harmonised model."""
    target = model.table(TABLE_OF_ROLE[contract.role])
    w = _Work(raw=raw, contract=contract)
    n = raw.num_rows
    for spec in sorted(contract.fields, key=_order):
        PARSERS[spec.parser](w, spec)
    _derive_ages(w)

    record_id = raw.column(contract.record_id).combine_chunks()
    w.columns.update(
        record_uid=pc.binary_join_element_wise(pa.array([contract.feed] * n, pa.string()), record_id, ":"),
        feed_id=pa.array([contract.feed] * n, pa.string()),
        agency=pa.array([contract.agency] * n, pa.string()),
        source_file=raw.column(SOURCE_FILE).combine_chunks(),
        source_row=raw.column(SOURCE_ROW).combine_chunks(),
        source_record_id=record_id,
    )
    records = model.conform(pa.table(w.columns), target)

    if not w.problems:
        return HarmoniseResult(records, quarantine.empty(), w.unmapped)
    # the first problem of each row names its quarantine reason
    bad = pa.array([False] * n)
    reason = pa.nulls(n, pa.string())
    field_at_fault = pa.nulls(n, pa.string())
    detail = pa.nulls(n, pa.string())
    for target_field, code, text, mask in w.problems:
        new = pc.and_(mask, pc.invert(bad))
        reason = pc.if_else(new, code, reason)
        field_at_fault = pc.if_else(new, target_field, field_at_fault)
        detail = pc.if_else(new, text, detail)
        bad = pc.or_(bad, mask)
    quarantined = pa.Table.from_arrays(
        [
            records.column("feed_id"), records.column("agency"), records.column("source_file"),
            records.column("source_row"), records.column("source_record_id"), reason, field_at_fault, detail,
        ],
        schema=quarantine.schema(),
    ).filter(bad)
    return HarmoniseResult(records.filter(pc.invert(bad)), quarantined, w.unmapped)
