"""Validation as aggregations over Dask partitions gives the report one process gives (both choose
by row hash: the chance level's blocks, target encoding's folds): every check, passed or failed,
with the same words, on clean data, on each breakage of the validation tests, on near-copies (the
chance level shuffled into the same blocks) and with derived features.
Dask runs in this process (its synchronous scheduler); the partitions split the rows unevenly."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import pandas as pd
import pytest

from driftline.core import demo_data, partition_validation, validation, versions
from tests.unit.core.test_validation import BROKEN


@pytest.fixture(autouse=True)
def _synchronous():
    # Partitions keep pandas' own dtypes (Dask would turn text into its string type, which names itself
    # differently in a type error), as partitions read from Parquet do.
    with dask.config.set({"scheduler": "synchronous", "dataframe.convert-string": False}):
        yield


def _report_lines(report) -> list[tuple]:
    return [(c.name, c.passed, c.detail, c.column) for c in report.checks]


def _both(df: pd.DataFrame, p, partitions: int = 5):
    alone = validation.validate(df, p)
    spread, _ = partition_validation.validate(dd.from_pandas(df, npartitions=partitions, sort=False), p)
    return alone, spread


def test_clean_data_gives_the_same_report(params, loans):
    alone, spread = _both(loans, params)
    assert alone.passed
    assert _report_lines(spread) == _report_lines(alone)
    assert any(c.name == "derived: values" for c in spread.checks)  # the derived features were checked too


@pytest.mark.parametrize(("breaker", "detail"), list(BROKEN.values()), ids=list(BROKEN))
def test_each_breakage_gives_the_same_report(params, loans, breaker, detail):
    alone, spread = _both(breaker(loans), params, partitions=4)
    assert not alone.passed and any(detail in c.detail for c in spread.failures)
    assert _report_lines(spread) == _report_lines(alone)


def test_near_copies_across_partitions_give_the_same_counts_and_chance_level(params, loans):
    copies = loans.iloc[:60].assign(annual_income=loans["annual_income"].iloc[:60] * 1.0001)
    df = pd.concat([loans, copies], ignore_index=True)
    alone, spread = _both(df, params, partitions=7)
    assert _report_lines(spread) == _report_lines(alone)
    near = next(c for c in spread.checks if c.name == "versions: near-duplicate rows")
    assert "(60 copies" in near.detail or "(59 copies" in near.detail


def test_the_chance_level_of_a_coarse_table_is_found_again_in_blocks(make_params, monkeypatch):
    """Three coarse columns repeat a fifth of their rows by chance; with blocks of 1,000 rows the
    3,000 rows make three blocks, shuffled into partitions, and the level is the one-process level."""
    monkeypatch.setattr(versions, "BLOCK_ROWS", 1000)
    p = make_params("data.features=[{name: age, type: numeric}, {name: term_months, type: numeric}, "
                    "{name: region, type: categorical}]", "data.derived=[]", "data.sensitive_attributes=[]",
                    "data.time_column=null", "evaluation.fairness=[]", "evaluation.behavioral=[]",
                    "monitoring.drift_columns=[]")
    df = demo_data.generate(3000, 2)[["age", "term_months", "region", "defaulted"]]
    alone, spread = _both(df, p, partitions=6)
    near = next(c for c in alone.checks if c.name == "versions: near-duplicate rows")
    assert "the columns repeat by chance" in near.detail and "beyond the 0.00%" not in near.detail
    assert _report_lines(spread) == _report_lines(alone)
