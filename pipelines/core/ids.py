"""Deterministic ids and buckets: the same on every worker, run and machine."""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa

from pipelines.core.vector import map_unique


def stable_bucket(values: pa.Array, buckets: int) -> np.ndarray:
    """A deterministic bucket per string (crc32), the same on every worker and run."""
    hashed = map_unique(values, lambda v: zlib.crc32(v.encode("utf-8")) % buckets, pa.int64())
    return hashed.to_numpy(zero_copy_only=False)
