"""Data validation on a table held in Dask partitions: the report `validation.validate` gives on
the same rows in one process, computed as aggregations where the partitions live.

Each partition is summarized (`summaries`), the summaries merged; exact duplicates are counted
from row hashes and near-copies from their keys, both with value_counts split over the workers;
the near-copy chance level shuffles the column hashes into the blocks `versions` defines (only
when there are copies); the derived features are fitted from sums (`derived_sums`) and their
values summarized per partition. The flow's process receives summaries, never rows.
"""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd

from driftline.config import Params
from driftline.core import derived_sums, frames, partitioned, summaries, training, validation, versions
from driftline.core.validation import ValidationReport


def row_hashes(part: pd.DataFrame) -> pd.Series:
    """One hash per row over every column, the same for equal rows in any partition (numbers as
    float64, text by value), for counting exact duplicates."""
    return pd.Series(pd.util.hash_pandas_object(training.hashable(part, list(part.columns)), index=False)
                     .to_numpy(), dtype="uint64")


def _repeats(series):
    """Rows equal to an earlier one: the sum over repeated values of (count - 1), lazily."""
    counts = series.value_counts(split_out=max(1, series.npartitions // 8))
    return (counts[counts > 1] - 1).sum()


def per_partition(ddf, fn, *args):
    """`fn(partition, *args)` for each partition, lazily: a Dask Series of one small object per
    partition (a summary, some sums), in partition order, merged where it is computed."""
    def one(part: pd.DataFrame) -> pd.Series:
        return pd.Series([fn(part, *args)], dtype=object)

    return ddf.map_partitions(one, meta=pd.Series(dtype=object))


def first_pass(ddf, p: Params) -> tuple[summaries.Summary, int, partitioned.NearCopies]:
    """The summary, the exact duplicates and the repeated near-copy keys, in one read of the table."""
    merged = per_partition(ddf, summaries.summarize, p)
    duplicates = _repeats(ddf.map_partitions(row_hashes, meta=pd.Series(dtype="uint64")))
    if not set(versions.identity_columns(p)) <= set(ddf.columns):  # a schema failure: near-copies are not asked
        parts, dupes = dask.compute(merged, duplicates)
        none = pd.Series([], dtype="int64", index=pd.Index([], dtype="uint64"))
        return summaries.merge_all(list(parts)), int(dupes), partitioned.near_copies_of(none)
    parts, dupes, repeated = dask.compute(merged, duplicates, partitioned.repeated_keys(ddf, p))
    return summaries.merge_all(list(parts)), int(dupes), partitioned.near_copies_of(repeated)


def _hash_columns(part: pd.DataFrame, p: Params, n_blocks: int) -> pd.DataFrame:
    hashes = versions.near_column_hashes(part, p)
    keys = versions.mix(hashes)
    return pd.DataFrame({"key": keys, "block": (keys % np.uint64(n_blocks)).astype("int64"),
                         **{f"h{i}": h for i, h in enumerate(hashes)}})


def _block_keys(part: pd.DataFrame) -> pd.Series:
    out = []
    columns = [c for c in part.columns if c.startswith("h")]
    for block, rows in part.groupby("block", sort=True):
        out.append(versions.block_chance_keys([rows[c].to_numpy() for c in columns], rows["key"].to_numpy(), block))
    return pd.Series(np.concatenate(out) if out else np.empty(0, dtype="uint64"), dtype="uint64")


def chance_copies(ddf, p: Params, rows: int) -> int:
    """`versions.chance_copies` on partitions: the column hashes shuffled into their blocks (each
    block whole in one partition), each block's columns permuted as in one process."""
    n_blocks = versions.blocks(rows)
    n_cols = len(versions.identity_columns(p))
    meta = pd.DataFrame({"key": pd.Series(dtype="uint64"), "block": pd.Series(dtype="int64"),
                         **{f"h{i}": pd.Series(dtype="uint64") for i in range(n_cols)}})
    hashed = ddf.map_partitions(_hash_columns, p, n_blocks, meta=meta)
    grouped = hashed.shuffle(on="block", npartitions=min(ddf.npartitions, n_blocks))
    return int(_repeats(grouped.map_partitions(_block_keys, meta=pd.Series(dtype="uint64"))).compute())


def derived_report(ddf, p: Params, classes: list) -> list:
    """The derived features' checks: fitted from the whole table's sums, every row's value (target
    encodings out of fold, as `fit_transform` gives them) summarized where it is computed."""
    try:
        sums = derived_sums_of(ddf, p, classes)
        step = derived_sums.fitted(p, sums, classes, p.data.feature_names)

        def summary(part: pd.DataFrame) -> dict:
            values = derived_sums.derive(step, sums, frames.features(part, p.data), training=True)
            return validation.derived_summary(values, p)

        total = _merge_derived(list(per_partition(ddf, summary).compute()))
    except Exception as err:  # noqa: BLE001 - reported against the config, as in one process
        return [validation.derived_failed(err)]
    return validation.judge_derived(total, p)


def _merge_derived(parts: list[dict]) -> dict:
    out = parts[0]
    for part in parts[1:]:
        out = validation.merge_derived(out, part)
    return out


def derived_sums_of(ddf, p: Params, classes: list) -> dict[str, pd.DataFrame]:
    """The sums every learning derived feature is fitted from, over the given partitions."""
    if not derived_sums.specs_learn(p):
        return {}
    return derived_sums.merge_sums(list(per_partition(ddf, derived_sums.partition_sums, p, classes).compute()))


def classes_of(summary: summaries.Summary, p: Params) -> list:
    counts = summary.by_name[p.data.target].counts if p.data.target in summary.by_name else None
    return sorted(counts) if counts else []


def validate(ddf, p: Params) -> tuple[ValidationReport, partitioned.NearCopies]:
    """The report, and the near-copy keys that repeat (the split needs them)."""
    report, near, _ = validate_with_summary(ddf, p)
    return report, near


def validate_with_summary(ddf, p: Params) -> tuple[ValidationReport, partitioned.NearCopies, summaries.Summary]:
    summary, duplicates, near = first_pass(ddf, p)

    def near_check():
        if not summary.rows:
            return None
        chance = chance_copies(ddf, p, summary.rows) if near.copies else 0
        return versions.near_check(near.copies, chance, near.largest, summary.rows, p)

    report = validation.judge(summary, p, lambda: duplicates, near_check,
                              lambda: derived_report(ddf, p, classes_of(summary, p)))
    return report, near, summary
