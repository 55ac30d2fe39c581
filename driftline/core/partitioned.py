"""The table as Dask partitions (training.distributed): the hash split applied per partition, row
samples chosen by row hash, and the near-copy keys counted across partitions.

Each function here gives, on a Dask DataFrame, what its in-process counterpart gives on the same
rows in one pandas frame: `holdout_mask` is `training.split` row for row, `hash_sample` picks the
rows `sample_by_hash` picks. A row's side, and whether a sample holds it, is a function of the
row's own values (and, for near-copies, of how often its key occurs in the whole table, which is
counted with a distributed value_counts), never of its position. Nothing is gathered in one
process but what is said: the near-copy keys that repeat, and the samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.core import training, versions

KEY = "__driftline_key"  # a column added for a moment (samples), dropped before anything sees it
# Salts of the samples, one per purpose, so that no two purposes share their rows by construction.
DRIFT_SALT, REFERENCE_SALT, EVALUATION_SALT, SEARCH_SALT, TYPICAL_SALT = 1, 2, 3, 4, 5


def sample_keys(df: pd.DataFrame, p: Params, salt: int) -> np.ndarray:
    """Each row's sampling key: its row key over the configured columns, salted."""
    return versions.splitmix(versions.row_keys(df, [c for c in p.data.columns if c in df.columns]), salt)


def sample_by_hash(df: pd.DataFrame, n: int, p: Params, salt: int) -> pd.DataFrame:
    """The `n` rows with the smallest sampling keys, in key order: the rows `hash_sample` picks from
    the same table in partitions."""
    keys = sample_keys(df, p, salt)
    return df.iloc[np.argsort(keys, kind="stable")[:n]]


def hash_sample(ddf, n: int, p: Params, salt: int) -> pd.DataFrame:
    """`sample_by_hash` on a Dask DataFrame: each partition's `n` smallest keys, then the `n`
    smallest of those (a tree reduction); only the sample reaches this process."""
    def keyed(part: pd.DataFrame) -> pd.DataFrame:
        return part.assign(**{KEY: sample_keys(part, p, salt)})

    meta = ddf._meta.assign(**{KEY: np.uint64(0)})
    picked = ddf.map_partitions(keyed, meta=meta).nsmallest(n, KEY).compute()
    return picked.sort_values(KEY, kind="stable").drop(columns=KEY)


def share_sample(df: pd.DataFrame, share: float, p: Params, salt: int) -> pd.DataFrame:
    """About `share` of the rows, chosen by their sampling keys (a partition keeps its own rows, so
    a sample of millions of rows is never merged in one place before it is wanted)."""
    cut = np.uint64(min(int(share * 2**32), 2**32))
    return df[(sample_keys(df, p, salt) >> np.uint64(32)) < cut]


def near_key_series(part: pd.DataFrame, p: Params) -> pd.Series:
    return pd.Series(versions.near_keys(part, versions.identity_columns(p), p.validation.near_duplicate_digits),
                     dtype="uint64")


@dataclass(frozen=True)
class NearCopies:
    """The near-copy keys that occur more than once in the whole table, with their counts: what
    the split needs (rows whose key repeats go to their key's side) and what the near-copy check
    reports (copies, the largest group). Rows with a near-copy are few, or the check fails."""

    keys: np.ndarray  # sorted uint64
    counts: np.ndarray

    @property
    def copies(self) -> int:
        return int((self.counts - 1).sum())

    @property
    def largest(self) -> int:
        return int(self.counts.max()) if len(self.counts) else 1


def repeated_keys(ddf, p: Params):
    """The near-copy keys that occur more than once, with their counts: lazy (a Dask Series computed
    beside other passes over the table), made `NearCopies` by `near_copies_of`. A value_counts split
    over the workers: the keys that occur once stay there."""
    keys = ddf.map_partitions(near_key_series, p, meta=pd.Series(dtype="uint64"))
    counts = keys.value_counts(split_out=max(1, ddf.npartitions // 8))
    return counts[counts > 1]


def near_copies_of(repeated: pd.Series) -> NearCopies:
    keys = repeated.index.to_numpy(dtype="uint64")
    order = np.argsort(keys)
    return NearCopies(keys[order], repeated.to_numpy()[order])


def near_copies(ddf, p: Params) -> NearCopies:
    """Every near-copy key that repeats, counted across partitions."""
    return near_copies_of(repeated_keys(ddf, p).compute())


def holdout_mask(part: pd.DataFrame, p: Params, together: np.ndarray) -> np.ndarray:
    """`training.split`'s holdout rows of one partition: the row's own hash, except for rows whose
    near-copy key repeats somewhere in the table (`together`, sorted), which go to their key's side."""
    cfg = p.split
    holdout = training.hash_holdout(part, p.data.columns, cfg.seed, cfg.test_size)
    if len(together):
        keys = versions.near_keys(part, versions.identity_columns(p), p.validation.near_duplicate_digits)
        grouped = _isin_sorted(keys, together)
        holdout[grouped] = training.key_side(keys[grouped], cfg.seed, cfg.test_size)
    return holdout


def _isin_sorted(values: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    where = np.searchsorted(sorted_keys, values)
    return sorted_keys[np.minimum(where, len(sorted_keys) - 1)] == values


@dataclass(frozen=True)
class Parts:
    """The split of a partitioned table: both sides lazy, each partition split where it lives."""

    train: object  # dask DataFrame
    holdout: object


def split(ddf, p: Params, together: np.ndarray) -> Parts:
    def side(part: pd.DataFrame, holdout: bool) -> pd.DataFrame:
        mask = holdout_mask(part, p, together)
        return part[mask if holdout else ~mask]

    return Parts(ddf.map_partitions(side, False, meta=ddf._meta), ddf.map_partitions(side, True, meta=ddf._meta))
