"""The table as Dask partitions gives what one pandas frame gives: the holdout of `training.split`
row for row (near-copies that straddle partitions included), and the same hash-chosen samples,
whatever the partitioning. Dask runs here in this process (its synchronous scheduler)."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from driftline.core import demo_data, partitioned, training, versions


@pytest.fixture(autouse=True)
def _synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    """Demo rows with near-copies: 300 rows repeated with a number nudged below the rounding, placed
    far from their originals so that a copy and its original sit in different partitions."""
    df = demo_data.generate(12_000, 5)
    copies = df.iloc[:300].copy()
    copies["annual_income"] = copies["annual_income"] * 1.0001
    return pd.concat([df, copies], ignore_index=True)


def _parts(df: pd.DataFrame, n: int):
    return dd.from_pandas(df, npartitions=n, sort=False)


@pytest.mark.parametrize("partitions", [1, 7, 31])
def test_the_partitioned_split_is_the_in_process_split_row_for_row(table, params, partitions):
    expected = training.split(table, params)
    ddf = _parts(table, partitions)
    near = partitioned.near_copies(ddf, params)
    parts = partitioned.split(ddf, params, near.keys)
    holdout, train = parts.holdout.compute(), parts.train.compute()
    assert holdout.index.tolist() == expected.holdout.index.tolist()
    assert train.index.tolist() == expected.train.index.tolist()
    # The near-copies were really split across partitions and really grouped on one side.
    keys = versions.near_keys(table, versions.identity_columns(params), params.validation.near_duplicate_digits)
    assert near.copies >= 290 and near.largest >= 2  # a nudge may cross a rounding boundary now and then
    for original in range(300):
        if keys[original] == keys[12_000 + original]:
            assert (original in holdout.index) == (12_000 + original in holdout.index)
    assert len(np.intersect1d(keys[holdout.index], keys[train.index])) == 0


def test_near_copies_count_what_the_in_process_check_counts(table, params):
    keys = pd.Series(versions.near_keys(table, versions.identity_columns(params),
                                        params.validation.near_duplicate_digits))
    near = partitioned.near_copies(_parts(table, 9), params)
    assert near.copies == int(keys.duplicated().sum())
    assert near.largest == int(keys.value_counts().iloc[0])


@pytest.mark.parametrize("partitions", [1, 5, 23])
def test_a_hash_sample_picks_the_same_rows_however_the_table_is_partitioned(table, params, partitions):
    expected = partitioned.sample_by_hash(table, 500, params, salt=3)
    got = partitioned.hash_sample(_parts(table, partitions), 500, params, salt=3)
    assert got.index.tolist() == expected.index.tolist()
    other = partitioned.sample_by_hash(table, 500, params, salt=4)
    assert len(set(other.index) & set(expected.index)) < 100  # another salt, other rows


def test_a_share_sample_keeps_about_that_share_and_the_same_rows_in_any_partition(table, params):
    whole = partitioned.share_sample(table, 0.25, params, salt=1)
    assert 0.22 < len(whole) / len(table) < 0.28
    pieces = pd.concat([partitioned.share_sample(part, 0.25, params, salt=1)
                        for part in (table.iloc[i:i + 2500] for i in range(0, len(table), 2500))])
    assert pieces.index.tolist() == whole.index.tolist()
