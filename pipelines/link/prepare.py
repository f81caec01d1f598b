"""Harmonised records -> the comparison table the linker works on.

Everything the comparisons and blocking rules need is derived here once per record, vectorised:
folded name parts, first given name, sorted surname set, the DNI core of a document (a DNI, or
the DNI inside a personal RUC; never a placeholder such as 12345678), the record's valid documents,
birth year (known or implied by the age at the event), and the phonetic name tokens
(schemas/linkage/phonetic.yaml): every name word of every name field, particles left out, spelled
by sound, sorted and distinct, so that neither the field a word was entered in nor its spelling
decides whether two records meet.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.harmonise.documents import compact, dni_from_personal_ruc, is_placeholder
from pipelines.core.vector import collapse_spaces, fold, map_unique, null_where
from pipelines.link import aliases
from pipelines.link.names import _null_if_empty, _repair_mojibake, _sorted_tokens, name_tokens

PASSTHROUGH = ("record_uid", "feed_id", "agency", "sex", "nationality", "ubigeo", "event_date", "birth_date",
               "age_at_event", "document_type", "document_valid", "police_report_ref", "prosecutor_case_ref")
DNI, RUC = "01", "06"


def _sound(*parts: pa.Array) -> pa.Array:
    """The phonetic tokens of some name fields, sorted and joined (null when there are none)."""
    return _null_if_empty(pc.binary_join(name_tokens(*parts), " "))


def _with_birth_years(tokens: pa.ListArray, known: pa.Array, implied: pa.Array) -> pa.ListArray:
    """Each name token with each year the person may have been born in ("KISPI|1996"): the year
    of a known birth date, or the two years an age at the event allows (someone 25 at an event
    in 2022 was born in 1996 or 1997), so that an age-only record meets the same person's record
    with a birth date, or with another age, on one shared year."""
    known = known.cast(pa.int64())
    implied = implied.cast(pa.int64())
    first = pc.coalesce(known, pc.subtract(implied, 1))
    second = pc.if_else(pc.is_valid(known), pa.scalar(None, pa.int64()), implied)
    lengths = pc.fill_null(pc.list_value_length(tokens), 0).to_numpy(zero_copy_only=False)
    parent = np.repeat(np.arange(len(tokens)), lengths)
    flat = pc.list_flatten(tokens)
    parts = []
    for years in (first, second):
        year = pc.take(years, pa.array(parent)).cast(pa.string())
        parts.append(pa.table({"parent": parent, "key": pc.binary_join_element_wise(flat, year, "|")}))
    table = pa.concat_tables(parts)
    table = table.filter(pc.is_valid(table.column("key"))).sort_by([("parent", "ascending"), ("key", "ascending")])
    counts = np.bincount(table.column("parent").to_numpy(), minlength=len(tokens))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), table.column("key").combine_chunks())


def _first_word(given: pa.Array) -> pa.Array:
    return _null_if_empty(pc.list_element(pc.split_pattern(given, " ", max_splits=1), 0))


def name_columns(given: pa.Array, paternal: pa.Array, maternal: pa.Array, birth_year: pa.Array,
                 implied_year: pa.Array) -> dict[str, pa.Array]:
    """The names by sound, from the folded name fields: each field's phonetic tokens (sorted,
    joined), all of them as a list (blocking), and each with the years of birth the record allows."""
    given_rest = _null_if_empty(pc.replace_substring_regex(given, r"^\S+\s*", ""))  # ELENA of MARIA ELENA
    tokens = name_tokens(given, paternal, maternal)
    return {"name_tokens": tokens, "name_token_years": _with_birth_years(tokens, birth_year, implied_year),
            "given_sound": _sound(given), "given1_sound": _sound(_first_word(given)),
            "given_rest_sound": _sound(given_rest), "paternal_sound": _sound(paternal),
            "maternal_sound": _sound(maternal), "surnames_sound": _sound(paternal, maternal)}


def _name_words(arr: pa.Array) -> pa.Array:
    """A name field folded into words: mojibake repaired, a hyphen between the words of a
    compound name taken as a space (DEL-AGUILA, MARIA-ELENA), spaces collapsed."""
    return collapse_spaces(pc.replace_substring(fold(_repair_mojibake(arr)), "-", " "))


def comparison_table(records: pa.Table) -> pa.Table:
    def col(name):
        return records.column(name).combine_chunks() if name in records.column_names else pa.nulls(
            records.num_rows, pa.string())

    given = _null_if_empty(_name_words(col("given_names")))
    paternal = _null_if_empty(_name_words(col("paternal_surname")))
    maternal = _null_if_empty(_name_words(col("maternal_surname")))
    given1 = _first_word(given)
    surnames = pc.binary_join_element_wise(pc.fill_null(paternal, ""), pc.fill_null(maternal, ""), " ")
    everything = pc.binary_join_element_wise(pc.fill_null(given, ""), surnames, " ")

    doc_type = col("document_type")
    number = col("document_number")
    ruc_dni = dni_from_personal_ruc(pc.if_else(pc.fill_null(pc.equal(doc_type, RUC), False), number,
                                               pa.scalar(None, pa.string())))
    document_core = pc.coalesce(ruc_dni, number)
    document_core = null_where(document_core, map_unique(document_core, lambda v: is_placeholder(compact(v)), pa.bool_()))
    documents = (records.column("documents").combine_chunks() if "documents" in records.column_names
                 else pa.array([[]] * records.num_rows, pa.list_(pa.string())))

    birth = records.column("birth_date").combine_chunks()
    event = records.column("event_date").combine_chunks()
    implied_year = pc.subtract(pc.year(event), records.column("age_at_event").combine_chunks().cast(pa.int64()))
    birth_year = pc.coalesce(pc.year(birth), implied_year)

    columns = {name: records.column(name).combine_chunks() for name in PASSTHROUGH if name in records.column_names}
    columns.update(
        given=given, given1=given1, given_initial=_null_if_empty(pc.utf8_slice_codeunits(given, 0, 1)),
        paternal=paternal, maternal=maternal,
        surname_set=_sorted_tokens(pc.utf8_trim_whitespace(surnames)),
        name_set=_sorted_tokens(pc.utf8_trim_whitespace(everything)),
        **name_columns(given, paternal, maternal, pc.year(birth), implied_year),
        document_core=document_core,
        documents=documents,
        birth_year=birth_year.cast(pa.int32()),
        birth_year_known=pc.is_valid(birth),
    )
    # how many given names the record gives, particles left out (the clustering guard: a compound
    # name shortened two ways, MARIA / CARMEN of MARIA DEL CARMEN, leaves one on each side)
    columns["given_words"] = pc.add(pc.count_substring(columns["given_sound"], " "), 1).cast(pa.int8())
    columns.update(aliases.columns(records, columns["name_tokens"]))  # offenders' aliases: pipelines/link/aliases.py
    return pa.table(columns)
