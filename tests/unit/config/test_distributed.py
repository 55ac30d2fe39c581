"""training.distributed, checkpoint_every and warm_start: the issue's YAML loads, and every mistake
is named by its key with the reason, all at once."""

from __future__ import annotations

import pytest

from driftline.config import ConfigError, apply_overrides, parse_params

DISTRIBUTED = ["data.path=data/loans/", "validation.previous.enabled=false", "evaluation.pinned.source=none",
               "training.estimator={kind: xgboost, params: {n_estimators: 400, learning_rate: 0.05}}",
               "training.distributed={engine: dask, partitions: 64, search_sample_rows: 2000000}",
               "training.checkpoint_every=50", "training.warm_start=champion"]


def _problems(raw: dict, *overrides: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_params(apply_overrides(raw, list(overrides)))
    return str(info.value).splitlines()


def test_the_issues_yaml_loads(raw_params):
    p = parse_params(apply_overrides(raw_params, DISTRIBUTED))
    assert p.data.path == "data/loans/"
    assert (p.training.distributed.engine, p.training.distributed.partitions) == ("dask", 64)
    assert p.training.distributed.search_sample_rows == 2_000_000
    assert (p.training.checkpoint_every, p.training.warm_start) == (50, "champion")


def test_a_kind_without_a_distributed_fit_is_named_with_the_kinds_that_have_one(raw_params):
    lines = _problems(raw_params, *DISTRIBUTED, "training.estimator={kind: random_forest}")
    assert "training.distributed: random_forest has no distributed fit; the kinds that have one: xgboost" in lines


def test_what_the_cluster_does_not_compute_yet_is_named_each_by_its_key(raw_params):
    lines = _problems(raw_params, *DISTRIBUTED, "validation.previous.enabled=true", "evaluation.pinned.source="
                      "champion_holdout", "split.method=time",
                      "data.derived=[{name: income_bin, kind: quantile_bins, column: annual_income, bins: 4}]")
    keys = {line.split(":")[0] for line in lines}
    assert {"validation.previous.enabled", "evaluation.pinned.source", "split.method", "data.derived.0.kind"} <= keys


def test_checkpoints_and_warm_starts_need_the_distributed_fit(raw_params):
    lines = _problems(raw_params, "training.estimator={kind: xgboost}", "training.checkpoint_every=10",
                      "training.warm_start=champion")
    assert any(line.startswith("training.checkpoint_every: only the distributed fit writes checkpoints")
               for line in lines)
    assert any(line.startswith("training.warm_start: only the distributed fit starts warm") for line in lines)


@pytest.mark.parametrize("path", ["data/loans", "data/loans.json"])
def test_a_data_path_is_a_file_or_a_directory_written_with_a_slash(raw_params, path):
    lines = _problems(raw_params, f"data.path={path}")
    assert any("or in / for a directory of Parquet files" in line for line in lines)
