"""Harmonised records -> the comparison table the linker works on.

Everything the comparisons and blocking rules need is derived here once per record, vectorised:
folded name parts, first given name, sorted surname set, the DNI core of a document (a DNI, or
the DNI inside a personal RUC; never a placeholder such as 12345678), the record's valid documents,
birth year (known or implied by the age at the event).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.harmonise.documents import compact, dni_from_personal_ruc, is_placeholder
from pipelines.harmonise.vector import fold, map_unique, null_where

PASSTHROUGH = ("record_uid", "feed_id", "agency", "sex", "nationality", "ubigeo", "event_date", "birth_date",
               "age_at_event", "document_type", "document_valid", "police_report_ref", "prosecutor_case_ref")
DNI, RUC = "01", "06"


def _null_if_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True), pa.scalar(None, arr.type), arr)


def _sorted_tokens(arr: pa.Array) -> pa.Array:
    """Tokens of each string, sorted and re-joined: order-free name comparison ("A B" == "B A")."""
    tokens = pc.split_pattern(arr, " ")
    table = pa.table({"parent": pc.list_parent_indices(tokens), "token": pc.list_flatten(tokens)})
    table = table.sort_by([("parent", "ascending"), ("token", "ascending")])
    ordered = pa.ListArray.from_arrays(pc.subtract(tokens.offsets, tokens.offsets[0]),
                                       table.column("token").combine_chunks(), mask=pc.is_null(tokens))
    return _null_if_empty(pc.binary_join(ordered, " "))


def comparison_table(records: pa.Table) -> pa.Table:
    def col(name):
        return records.column(name).combine_chunks() if name in records.column_names else pa.nulls(
            records.num_rows, pa.string())

    given = _null_if_empty(fold(col("given_names")))
    paternal = _null_if_empty(fold(col("paternal_surname")))
    maternal = _null_if_empty(fold(col("maternal_surname")))
    given1 = _null_if_empty(pc.list_element(pc.split_pattern(given, " ", max_splits=1), 0))
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
        document_core=document_core,
        documents=documents,
        birth_year=birth_year.cast(pa.int32()),
        birth_year_known=pc.is_valid(birth),
    )
    return pa.table(columns)
