"""Capture-history tables for multiple systems estimation (MSE).

A capture-history table for ``k`` lists has one 0/1 column per list and a
``count`` column: the number of distinct cases seen on exactly that
combination of lists.  Combinations that are not listed have count zero.  The
all-zero combination (seen on no list) is, by definition, unobservable; it is
what MSE estimates.

Internally the table is held as a dense vector ``counts`` of length ``2**k``
indexed by an integer *cell code*: bit ``j`` of the code is 1 when the cell is
on list ``j`` (list order = column order).  ``counts[0]`` is the unobserved
cell and is always 0.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = ["CaptureHistory", "CaptureHistoryError", "MAX_LISTS"]

#: Hard upper bound on the number of lists a table may have (2**k cells are
#: held densely; the estimators themselves have tighter bounds, see docs/mse.md).
MAX_LISTS = 16


class CaptureHistoryError(ValueError):
    """The input is not a valid capture-history table."""


def _is_count_column(name: str) -> bool:
    return name.strip().lower() in {"count", "counts", "freq", "frequency", "n"}


@dataclass(frozen=True)
class CaptureHistory:
    """A validated capture-history table.

    Use :meth:`from_csv`, :meth:`from_dataframe`, :meth:`from_arrow`,
    :meth:`from_rows` or :meth:`load` to build one.
    """

    lists: tuple[str, ...]
    counts: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        k = len(self.lists)
        counts = np.asarray(self.counts, dtype=float)
        if counts.shape != (2**k,):
            raise CaptureHistoryError(f"counts must have length 2**k = {2**k}, got {counts.shape}")
        if counts[0] != 0:
            raise CaptureHistoryError("the all-zero capture history (seen on no list) cannot have a count")
        if np.any(counts < 0) or not np.all(np.isfinite(counts)):
            raise CaptureHistoryError("counts must be finite and non-negative")
        if len(set(self.lists)) != k:
            raise CaptureHistoryError(f"duplicate list names: {list(self.lists)}")
        counts = counts.copy()
        counts.setflags(write=False)
        object.__setattr__(self, "counts", counts)

    # ------------------------------------------------------------------ basics
    @property
    def k(self) -> int:
        """Number of lists."""
        return len(self.lists)

    @property
    def n_observed(self) -> int:
        """Total number of distinct cases observed on at least one list."""
        return int(round(float(self.counts.sum())))

    @property
    def n_cells_observed(self) -> int:
        """Number of capture histories with a positive count."""
        return int(np.count_nonzero(self.counts))

    def nstar(self, mask: int) -> float:
        """Number of cases on *all* the lists in ``mask`` (whatever else they are on)."""
        codes = np.arange(2**self.k)
        return float(self.counts[(codes & mask) == mask].sum())

    def list_totals(self) -> dict[str, int]:
        return {name: int(round(self.nstar(1 << j))) for j, name in enumerate(self.lists)}

    def pair_overlaps(self) -> dict[tuple[str, str], int]:
        """Cases seen on both lists of each pair (regardless of other lists)."""
        out = {}
        for i in range(self.k):
            for j in range(i + 1, self.k):
                out[(self.lists[i], self.lists[j])] = int(round(self.nstar((1 << i) | (1 << j))))
        return out

    def with_counts(self, counts: np.ndarray) -> "CaptureHistory":
        """Same lists, different counts (used by the bootstrap and jackknife)."""
        return CaptureHistory(self.lists, np.asarray(counts, dtype=float))

    def drop_lists(self, names: Iterable[str]) -> "CaptureHistory":
        """Collapse the table over the named lists (cases only on them become unobserved)."""
        drop = set(names)
        keep = [j for j, name in enumerate(self.lists) if name not in drop]
        new = np.zeros(2 ** len(keep))
        for code in range(1, 2**self.k):
            newcode = 0
            for newj, j in enumerate(keep):
                if code >> j & 1:
                    newcode |= 1 << newj
            if newcode:
                new[newcode] += self.counts[code]
        return CaptureHistory(tuple(self.lists[j] for j in keep), new)

    # ------------------------------------------------------------------ output
    def to_rows(self, include_zero: bool = False) -> list[dict[str, int]]:
        rows = []
        for code in range(1, 2**self.k):
            c = self.counts[code]
            if c == 0 and not include_zero:
                continue
            row = {name: (code >> j) & 1 for j, name in enumerate(self.lists)}
            row["count"] = int(c) if float(c).is_integer() else float(c)
            rows.append(row)
        return rows

    def to_dataframe(self, include_zero: bool = False):
        import pandas as pd

        return pd.DataFrame(self.to_rows(include_zero), columns=[*self.lists, "count"])

    # ------------------------------------------------------------------ input
    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Sequence[Any]],
        lists: Sequence[str],
    ) -> "CaptureHistory":
        """Build from rows ``(flag_1, ..., flag_k, count)``; duplicate histories are summed."""
        lists = tuple(str(x).strip() for x in lists)
        k = len(lists)
        if k == 0:
            raise CaptureHistoryError("a capture-history table needs at least one list column")
        if k > MAX_LISTS:
            raise CaptureHistoryError(f"too many lists ({k}); at most {MAX_LISTS} are supported")
        counts = np.zeros(2**k)
        for lineno, row in enumerate(rows, start=1):
            row = list(row)
            if len(row) != k + 1:
                raise CaptureHistoryError(f"row {lineno}: expected {k + 1} values, got {len(row)}")
            code = 0
            for j, v in enumerate(row[:k]):
                flag = _parse_flag(v, lineno, lists[j])
                code |= flag << j
            count = _parse_count(row[k], lineno)
            if code == 0:
                if count != 0:
                    raise CaptureHistoryError(
                        f"row {lineno}: a case seen on no list (all flags 0) cannot be observed; "
                        "remove the row (its count is what MSE estimates)"
                    )
                continue
            counts[code] += count
        return cls(lists, counts)

    @classmethod
    def from_dataframe(cls, df, count_column: str | None = None) -> "CaptureHistory":
        """From a pandas DataFrame: 0/1 list columns plus a count column (default: ``count``, else the last column)."""
        cols = [str(c) for c in df.columns]
        count_col = _pick_count_column(cols, count_column)
        list_cols = [c for c in cols if c != count_col]
        sub = df[[*list_cols, count_col]] if list(df.columns) != [*list_cols, count_col] else df
        return cls.from_rows(sub.itertuples(index=False, name=None), list_cols)

    @classmethod
    def from_arrow(cls, table, count_column: str | None = None) -> "CaptureHistory":
        """From a ``pyarrow.Table`` (or anything with ``column_names`` and ``to_pydict``)."""
        cols = [str(c) for c in table.column_names]
        count_col = _pick_count_column(cols, count_column)
        list_cols = [c for c in cols if c != count_col]
        data = table.to_pydict()
        rows = zip(*(data[c] for c in [*list_cols, count_col]))
        return cls.from_rows(rows, list_cols)

    @classmethod
    def from_csv(cls, path_or_buffer, count_column: str | None = None) -> "CaptureHistory":
        """From a CSV file (path or text buffer) with a header row."""
        if isinstance(path_or_buffer, (str, os.PathLike)):
            with open(path_or_buffer, newline="", encoding="utf-8-sig") as fh:
                return cls._from_csv_handle(fh, count_column)
        return cls._from_csv_handle(path_or_buffer, count_column)

    @classmethod
    def from_csv_text(cls, text: str, count_column: str | None = None) -> "CaptureHistory":
        return cls._from_csv_handle(io.StringIO(text), count_column)

    @classmethod
    def _from_csv_handle(cls, fh, count_column):
        # "#" lines are comments (a pipeline run marks demo tables with one)
        reader = csv.reader(line for line in fh if not line.startswith("#"))
        try:
            header = next(reader)
        except StopIteration:
            raise CaptureHistoryError("empty CSV: no header row") from None
        header = [h.strip() for h in header]
        count_col = _pick_count_column(header, count_column)
        idx = header.index(count_col)
        list_cols = [h for h in header if h != count_col]
        order = [header.index(c) for c in list_cols] + [idx]
        rows = []
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise CaptureHistoryError(
                    f"CSV line {reader.line_num}: expected {len(header)} fields, got {len(row)}"
                )
            rows.append([row[i] for i in order])
        return cls.from_rows(rows, list_cols)

    @classmethod
    def load(cls, obj, count_column: str | None = None) -> "CaptureHistory":
        """Accept a CaptureHistory, a path to a CSV, a pandas DataFrame or a pyarrow Table."""
        if isinstance(obj, CaptureHistory):
            return obj
        if isinstance(obj, (str, os.PathLike)):
            return cls.from_csv(obj, count_column)
        if hasattr(obj, "itertuples") and hasattr(obj, "columns"):
            return cls.from_dataframe(obj, count_column)
        if hasattr(obj, "column_names") and hasattr(obj, "to_pydict"):
            return cls.from_arrow(obj, count_column)
        if hasattr(obj, "read"):
            return cls.from_csv(obj, count_column)
        raise CaptureHistoryError(f"cannot read a capture-history table from {type(obj).__name__}")


def _pick_count_column(cols: list[str], count_column: str | None) -> str:
    if not cols:
        raise CaptureHistoryError("no columns")
    if count_column is not None:
        if count_column not in cols:
            raise CaptureHistoryError(f"count column {count_column!r} not found in {cols}")
        return count_column
    named = [c for c in cols if _is_count_column(c)]
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise CaptureHistoryError(f"several possible count columns: {named}; name one explicitly")
    raise CaptureHistoryError(f"no 'count' column among {cols}")


def _parse_flag(v: Any, lineno: int, name: str) -> int:
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    try:
        f = float(str(v).strip()) if not isinstance(v, (int, float, np.integer, np.floating)) else float(v)
    except ValueError:
        raise CaptureHistoryError(f"row {lineno}: list {name!r} flag {v!r} is not 0 or 1") from None
    if f not in (0.0, 1.0):
        raise CaptureHistoryError(f"row {lineno}: list {name!r} flag {v!r} is not 0 or 1")
    return int(f)


def _parse_count(v: Any, lineno: int) -> float:
    try:
        f = float(str(v).strip()) if not isinstance(v, (int, float, np.integer, np.floating)) else float(v)
    except ValueError:
        raise CaptureHistoryError(f"row {lineno}: count {v!r} is not a number") from None
    if not np.isfinite(f) or f < 0:
        raise CaptureHistoryError(f"row {lineno}: count {v!r} must be a finite non-negative number")
    if not float(f).is_integer():
        raise CaptureHistoryError(f"row {lineno}: count {v!r} must be a whole number of cases")
    return f
