"""The contract interpreter: raw string columns -> harmonised victim or offender records.

Each contract field names a parser; each parser is a pure, vectorised normaliser from this
package. A row whose non-empty value cannot be parsed (a date, an age) is quarantined with
the field and reason; unknown code values become null and are counted, never guessed.
A field the contract makes ``required`` also fails on an empty value, an unknown code, a place
no UBIGEO list knows, or an invalid or placeholder document: ``quarantine`` quarantines the row
with that reason, ``warn`` keeps it and counts the failure. Columns may be paths into nested
records (pipelines.harmonise.paths); a path through a list gives a record several documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import model, quarantine
from pipelines.contracts import Contract, FieldSpec
from pipelines.harmonise import (ages, countries, dates, documents, lookups, names, offences, paths, places,
                                  references)
from pipelines.read import SOURCE_FILE, SOURCE_ROW

TABLE_OF_ROLE = {"victim": "victim", "offender": "offender"}


@dataclass
class HarmoniseResult:
    records: pa.Table
    quarantined: pa.Table
    # harmonised field -> raw value -> count, for code values no lookup knew
    unmapped_values: dict[str, dict[str, int]] = field(default_factory=dict)
    # (harmonised field, reason code) -> rows kept despite failing a field required with ``warn``
    warnings: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class _Work:
    raw: pa.Table
    contract: Contract
    columns: dict[str, pa.Array] = field(default_factory=dict)
    problems: list[tuple[str, str, str, pa.Array]] = field(default_factory=list)  # (field, code, detail, mask)
    unmapped: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: dict[tuple[str, str], int] = field(default_factory=dict)
    reported_age: pa.Array | None = None

    def source(self, column: str) -> pa.Array:
        """One value per row; for a path through a list, its first element."""
        values = paths.resolve(self.raw, column)
        return _first(values) if pa.types.is_list(values.type) else values

    def source_list(self, column: str) -> pa.Array:
        """A list of values per row (a plain column or path gives lists of at most one)."""
        values = paths.resolve(self.raw, column)
        if pa.types.is_list(values.type):
            return values
        offsets = pc.cumulative_sum(pc.cast(pc.is_valid(values), pa.int32()))
        offsets = pa.concat_arrays([pa.array([0], pa.int32()), offsets.cast(pa.int32())])
        return pa.ListArray.from_arrays(offsets, values.drop_null())

    def flag(self, target: str, code: str, detail: str, mask: pa.Array) -> None:
        if pc.any(mask).as_py():
            self.problems.append((target, code, detail, mask))

    def require(self, spec: FieldSpec, failures: list[tuple[str, str, pa.Array]]) -> None:
        """Apply the field's ``required`` severity to its failures: (reason code, detail, mask)."""
        if spec.required is None:
            return
        for code, detail, mask in failures:
            mask = pc.fill_null(mask, False)
            if spec.required == "quarantine":
                self.flag(spec.target, code, f"{spec.target}: {detail} (required)", mask)
            else:
                count = pc.sum(mask.cast(pa.int64())).as_py() or 0
                if count:
                    key = (spec.target, code)
                    self.warnings[key] = self.warnings.get(key, 0) + count

    def note_unmapped(self, target: str, values: dict[str, int]) -> None:
        if values:
            bucket = self.unmapped.setdefault(target, {})
            for value, count in values.items():
                bucket[value] = bucket.get(value, 0) + count


def _first(lists: pa.Array) -> pa.Array:
    """The first element of each list (null for an empty or null list)."""
    lengths = pc.fill_null(pc.list_value_length(lists), 0)
    starts = pc.subtract(pc.cumulative_sum(lengths), lengths)
    at = pc.if_else(pc.greater(lengths, 0), starts, pa.scalar(None, starts.type))
    return pc.take(pc.list_flatten(lists), at)


def _missing(values: pa.Array) -> list[tuple[str, str, pa.Array]]:
    return [("missing_value", "empty", pc.is_null(values))]


def _unknown(raw: pa.Array, values: pa.Array, what: str) -> list[tuple[str, str, pa.Array]]:
    """Failures of a coded field: empty, or a value the code list or lookup does not know."""
    return [("missing_value", "empty", pc.is_null(raw)),
            ("unmapped_code", f"{what} not known", pc.and_(pc.is_valid(raw), pc.is_null(values)))]


def _text(w: _Work, spec: FieldSpec) -> None:
    w.columns[spec.target] = w.source(spec.options["column"])
    w.require(spec, _missing(w.columns[spec.target]))


def _reference(w: _Work, spec: FieldSpec) -> None:
    w.columns[spec.target] = references.normalise_reference(w.source(spec.options["column"]),
                                                            spec.options.get("patterns"))
    w.require(spec, _missing(w.columns[spec.target]))


def _date(w: _Work, spec: FieldSpec) -> None:
    formats = spec.options.get("formats") or ["%Y-%m-%d"]
    values, problems = dates.parse_dates(w.source(spec.options["column"]), formats)
    w.columns[spec.target] = values
    w.flag(spec.target, "invalid_date", f"{spec.target}: not a valid date in the format {' or '.join(formats)}",
           pc.is_valid(problems))
    w.require(spec, _missing(values))


def _age(w: _Work, spec: FieldSpec) -> None:
    values, problems = ages.parse_ages(w.source(spec.options["column"]))
    w.reported_age = values
    w.flag("age", "invalid_age", "age: not a whole number of years between 0 and 110", pc.is_valid(problems))
    w.require(spec, _missing(values))


def _country(w: _Work, spec: FieldSpec) -> None:
    raw = w.source(spec.options["column"])
    w.columns[spec.target] = countries.to_iso3(raw)
    w.note_unmapped(spec.target, countries.unmapped_values(raw))
    w.require(spec, _unknown(raw, w.columns[spec.target], "country"))


# place fields -> the prefix of the columns they fill (the event place, and where a victim comes from)
PLACE_PREFIX = {"ubigeo": "", "place_of_origin": "origin_"}
PLACE_COLUMNS = ("ubigeo", "ubigeo_raw", "ubigeo_source_list", "department", "place_level")


def _ubigeo(w: _Work, spec: FieldSpec) -> None:
    prefix = PLACE_PREFIX[spec.target]
    result = places.to_inei_ubigeo(
        w.source(spec.options["column"]),
        spec.options.get("list", "INEI"),
        bool(spec.options.get("restore_leading_zeros", False)),
    )
    for name in PLACE_COLUMNS:
        w.columns[prefix + name] = result.column(name).combine_chunks()
    raw, ubigeo = w.columns[prefix + "ubigeo_raw"], w.columns[prefix + "ubigeo"]
    unknown = pc.and_(pc.is_valid(raw), pc.is_null(ubigeo))
    if pc.any(unknown).as_py():
        counts = pc.value_counts(pc.filter(raw, unknown)).to_pylist()
        w.note_unmapped(spec.target, {c["values"]: c["counts"] for c in counts})
    w.require(spec, [("missing_value", "empty", pc.is_null(raw)),
                     ("invalid_ubigeo", "not a UBIGEO of the declared list(s)", unknown)])


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
    w.require(spec, _unknown(raw, w.columns["offence"], "article"))


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
    no_name = pc.and_(pc.is_null(w.columns["given_names"]),
                      pc.and_(pc.is_null(w.columns["paternal_surname"]), pc.is_null(w.columns["maternal_surname"])))
    w.require(spec, [("missing_value", "empty name", no_name)])


def _aliases(w: _Work, spec: FieldSpec) -> None:
    """Other names a person goes by ("alias", "chapa"): a list path, or one text separated by ; or |."""
    values = w.source_list(spec.options["column"])
    parents = pc.list_parent_indices(values)
    flat = pc.list_flatten(values)
    pieces = pc.split_pattern_regex(flat, r"\s*[;|]\s*")
    names_flat = names.normalise_name_part(pc.list_flatten(pieces))
    owners = pc.take(parents, pc.list_parent_indices(pieces))
    w.columns[spec.target] = _regroup(names_flat, owners, w.raw.num_rows)
    w.require(spec, [("missing_value", "empty", pc.equal(pc.list_value_length(w.columns[spec.target]), 0))])


def _regroup(values: pa.Array, owners: pa.Array, n: int) -> pa.Array:
    """Values with their row index -> one sorted list per row (nulls dropped, duplicates kept once)."""
    keep = pc.is_valid(values)
    table = pa.table({"row": pc.filter(owners, keep), "v": pc.filter(values, keep)})
    table = table.group_by(["row", "v"], use_threads=False).aggregate([]) \
        .sort_by([("row", "ascending"), ("v", "ascending")])
    counts = np.bincount(table.column("row").to_numpy(), minlength=n)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    return pa.ListArray.from_arrays(offsets, table.column("v").combine_chunks())


DOCUMENT_SEPARATOR = ":"  # documents as "TYPE:NUMBER" in the record's documents list


def _document(w: _Work, spec: FieldSpec) -> None:
    """One document per record, or several (a path through a list: ``documentos[].numero``).

    ``documents`` keeps every valid document of the record as "TYPE:NUMBER"; document_type,
    document_number and document_valid describe its first valid one (else its first one).
    Placeholders stay in neither as an identifier: document_valid is false and documents skips them.
    """
    o = spec.options
    n = w.raw.num_rows
    numbers = w.source_list(o["number_column"])
    owners = pc.list_parent_indices(numbers)
    if o.get("type_column"):
        raw_types = w.source_list(o["type_column"])
        if len(pc.list_flatten(raw_types)) != len(pc.list_flatten(numbers)):
            # a type list that does not pair with the numbers: the first type stands for all
            raw_types = pc.take(_first(raw_types), owners)
        else:
            raw_types = pc.list_flatten(raw_types)
        if o.get("type_lookup"):
            types, unmapped = lookups.apply_lookup(raw_types, w.contract.lookups[o["type_lookup"]])
            w.note_unmapped("document_type", unmapped)
        else:
            types = raw_types
    else:
        types = pa.array([o.get("type")] * len(owners), pa.string())
    found = documents.normalise_documents(types.cast(pa.string()), pc.list_flatten(numbers),
                                          o.get("restore_leading_zeros", False))
    valid = pc.fill_null(found.column("document_valid"), False).combine_chunks()
    # the record's main document: its first valid one, else its first one
    order = pa.table({"row": owners, "invalid": pc.invert(valid), "i": pa.array(np.arange(len(owners)))})
    main = order.sort_by([("row", "ascending"), ("invalid", "ascending"), ("i", "ascending")]) \
        .group_by("row", use_threads=False).aggregate([("i", "first")])
    at = np.full(n, -1)
    at[main.column("row").to_numpy()] = main.column("i_first").to_numpy()
    take_at = pa.array(at, mask=at < 0)
    for name in ("document_type", "document_number", "document_valid"):
        w.columns[name] = pc.take(found.column(name), take_at)
    keys = pc.binary_join_element_wise(found.column("document_type"), found.column("document_number"),
                                       DOCUMENT_SEPARATOR)
    w.columns["documents"] = _regroup(pc.if_else(valid, keys, pa.scalar(None, pa.string())), owners, n)
    placeholder = pc.fill_null(pc.take(found.column("document_placeholder"), take_at), False)
    number = w.columns["document_number"]
    not_valid = pc.invert(pc.fill_null(w.columns["document_valid"], False))
    w.require(spec, [
        ("missing_value", "no document number", pc.is_null(number)),
        ("placeholder_document", "a placeholder number, not a real document", placeholder),
        ("invalid_document", "fails its type's format or check digit, or its type is unknown",
         pc.and_(pc.is_valid(number), pc.and_(pc.invert(placeholder), not_valid))),
    ])


def _lookup(w: _Work, spec: FieldSpec) -> None:
    raw = w.source(spec.options["column"])
    mapped, unmapped = lookups.apply_lookup(raw, w.contract.lookups[spec.options["lookup"]])
    w.columns[spec.target] = mapped
    w.note_unmapped(spec.target, unmapped)
    unknown = pc.fill_null(pc.is_in(raw, value_set=pa.array(list(unmapped), pa.string())), False)
    w.require(spec, [("missing_value", "empty", pc.and_(pc.is_null(mapped), pc.invert(unknown))),
                     ("unmapped_code", "a code the contract's lookup does not know", unknown)])


def _constant(w: _Work, spec: FieldSpec) -> None:
    w.columns[spec.target] = pa.array([spec.options["value"]] * w.raw.num_rows)


PARSERS = {
    "text": _text, "reference": _reference, "date": _date, "age": _age, "country": _country,
    "ubigeo": _ubigeo, "statute": _statute, "name": _name, "document": _document, "aliases": _aliases,
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
        return HarmoniseResult(records, quarantine.empty(), w.unmapped, w.warnings)
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
    return HarmoniseResult(records.filter(pc.invert(bad)), quarantined, w.unmapped, w.warnings)
