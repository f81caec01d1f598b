"""Comparison of identity documents when a record may carry several (``document_set``).

A feed may give a person a DNI and a passport, another agency only the passport. Each record's
valid documents come as a list of "TYPE:NUMBER" (``documents``, pipelines.harmonise.engine), its
main document as ``document_core`` (the DNI inside a personal RUC, placeholders removed by
pipelines.link.prepare). Levels, strongest first:

- 3: a valid document both records share, or the same main number;
- 2: main numbers of the same length one edit or transposition apart (a typo);
- 1: valid documents of different types only (a DNI against a passport), or different numbers
  of a type that is renewed under a new number (a passport): not a contradiction, since one
  person may hold both, but EM learns how often such pairs are the same person;
- 0: both records hold valid documents of a same type that a person keeps for life (the
  comparison's ``for_life_types``: DNI, RUC; every type when the setting is absent) and none of
  those is shared (two people), or, with no such evidence, main numbers of such a type (or
  untyped) that differ;
- -1: nothing to compare.

Sets are compared for all pairs at once, never looped over in Python: pairs where each side has
at most one document compare those element-wise; the few where a side has several are exploded to
(pair, document) and (pair, type) rows and joined on the pair.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.link import arrays
from pipelines.link.settings import Comparison, LinkageSettings

SEPARATOR = ":"  # as pipelines.harmonise.engine.DOCUMENT_SEPARATOR writes them

LEVELS = {3: "a shared valid document, or the same number", 2: "one edit or transposition apart",
          1: "documents of different types only, or different numbers of a renewable type",
          0: "different documents of a type kept for life"}
COLUMNS = ("document_core", "document_type", "documents")
OPTIONS = ("for_life_types",)


def _documents(table: pa.Table) -> pa.ListArray:
    docs = table.column("documents")
    return docs.combine_chunks() if isinstance(docs, pa.ChunkedArray) else docs


def _first(docs: pa.ListArray) -> pa.Array:
    """Each side's first document (null where it has none)."""
    head = pc.list_slice(docs, 0, 1)
    at = np.full(len(docs), -1)
    at[pc.list_parent_indices(head).to_numpy()] = np.arange(len(pc.list_flatten(head)))
    return pc.take(pc.list_flatten(head), pa.array(at, mask=at < 0))


def _exploded(docs: pa.ListArray) -> pa.Table:
    """(pair index, document, type) for every valid document of every pair's side."""
    flat = pc.list_flatten(docs)
    return pa.table({
        "pair": pc.list_parent_indices(docs),
        "doc": flat,
        "type": pc.utf8_slice_codeunits(flat, 0, 2),  # SUNAT type codes have two digits
    })


def _pairs_joined(left: pa.Table, right: pa.Table, keys: list[str], n: int) -> np.ndarray:
    """Pairs where some left row and some right row agree on ``keys`` (pair index included)."""
    joined = left.select(keys).join(right.select(keys), keys=keys, join_type="inner", use_threads=False)
    hit = np.zeros(n, dtype=bool)
    if joined.num_rows:
        hit[joined.column("pair").to_numpy()] = True
    return hit


def set_agreement(left: pa.Table, right: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(shares a valid document, shares a valid document type) per pair."""
    dl, dr = _documents(left), _documents(right)
    fl, fr = _first(dl), _first(dr)
    shared = pc.fill_null(pc.equal(fl, fr), False).to_numpy(zero_copy_only=False)
    same_type = pc.fill_null(pc.equal(pc.utf8_slice_codeunits(fl, 0, 2), pc.utf8_slice_codeunits(fr, 0, 2)),
                             False).to_numpy(zero_copy_only=False)
    several = np.flatnonzero((_counts(left) > 1) | (_counts(right) > 1))
    if len(several):
        rows = pa.array(several)
        a, b = _exploded(pc.take(dl, rows)), _exploded(pc.take(dr, rows))
        shared[several] = _pairs_joined(a, b, ["pair", "doc"], len(several))
        same_type[several] = _pairs_joined(a, b, ["pair", "type"], len(several))
    return shared, same_type


def for_life_types(settings: LinkageSettings | None) -> list[str] | None:
    """The document types a person keeps one number of for life, from the ``document_set``
    comparison of the settings (None: every type counts)."""
    for c in settings.comparisons if settings else ():
        if c.type == "document_set" and c.for_life_types is not None:
            return list(c.for_life_types)
    return None


def _only_types(table: pa.Table, types: list[str]) -> pa.Table:
    """The table with each record's documents list cut to the given types."""
    docs = _documents(table)
    flat = pc.list_flatten(docs)
    keep = pc.is_in(pc.utf8_slice_codeunits(flat, 0, 2), pa.array(types, pa.string()))
    parent = pc.filter(pc.list_parent_indices(docs), keep).to_numpy()
    offsets = np.concatenate([[0], np.cumsum(np.bincount(parent, minlength=len(docs)))]).astype(np.int32)
    kept = pa.ListArray.from_arrays(pa.array(offsets), pc.filter(flat, keep))
    return table.set_column(table.column_names.index("documents"), "documents", kept)


def document_set(left: pa.Table, right: pa.Table, spec: Comparison) -> np.ndarray:
    d1, d2 = arrays._col(left, "document_core"), arrays._col(right, "document_core")
    t1, t2 = arrays._col(left, "document_type"), arrays._col(right, "document_type")
    shared, same_type = set_agreement(left, right)
    cores_known = arrays._valid(d1) & arrays._valid(d2)
    types_compatible = arrays._eq(t1, t2) | ~arrays._valid(t1) | ~arrays._valid(t2)
    same_length = arrays._eq(arrays._derived(d1, pc.utf8_length), arrays._derived(d2, pc.utf8_length))
    both_hold = (_counts(left) > 0) & (_counts(right) > 0)
    other_types = (both_hold & ~same_type) | (cores_known & ~types_compatible)
    # a contradiction needs two numbers of one type a person keeps for life (or of an unknown type)
    life = spec.for_life_types
    if life is None:
        same_life_type, main_for_life = same_type, np.ones(len(shared), dtype=bool)
    else:
        _, same_life_type = set_agreement(_only_types(left, life), _only_types(right, life))
        life_type = arrays._derived(t1, lambda a: pc.is_in(a, pa.array(life, pa.string())))
        main_for_life = ~arrays._valid(t1) | ~arrays._valid(t2) | pc.fill_null(life_type, False).to_numpy(
            zero_copy_only=False)
    conflict = same_life_type | (cores_known & types_compatible & main_for_life)
    return arrays._select(
        [(shared | arrays._eq(d1, d2), 3),
         (types_compatible & same_length & (arrays._edits(d1, d2) <= 1), 2),
         (~conflict, 1)],
        known=shared | same_type | cores_known | other_types,
    )


def _counts(table: pa.Table) -> np.ndarray:
    return pc.fill_null(pc.list_value_length(_documents(table)), 0).to_numpy()
