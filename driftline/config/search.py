"""`training.search`: the hyperparameter search, run before the final fit.

Each trial is scored by K-fold cross-validation on the training part only (the holdout stays the
gates'), on the primary metric. Trials are asked in fixed-size batches and told back in trial
order, so the best parameters depend on the seed, the data and the params, never on how many
workers ran them or which finished first.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from driftline.config.strict import Strict


class Range(Strict):
    """A number between `low` and `high`; `log` samples on a log scale; `int` for whole numbers."""

    low: float
    high: float
    log: bool = False
    int: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low:g}) must be below high ({self.high:g})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log scale needs low > 0, got {self.low:g}")
        return self


class Choice(Strict):
    """One of a list of values."""

    choices: list[float | int | str | None] = Field(min_length=1)


class SearchConfig(Strict):
    enabled: bool = Field(default=True, description="false keeps the section but trains as without it "
                          "(`driftline train --no-search` does the same once).")
    space: dict[str, Range | Choice] = Field(min_length=1, description=(
        "Estimator parameter -> range or choices, for the estimator kind of training.estimator; "
        "the parameters it leaves out keep their training.estimator values."))
    trials: int = Field(default=20, ge=1, le=2000)
    batch: int = Field(default=4, ge=1, le=256, description=(
        "Trials asked at once and run in parallel (with the next batch queued behind them). The "
        "result depends on it, never on the workers."))
    folds: int = Field(default=3, ge=2, le=20, description="K of the K-fold cross-validation on the training part.")
    timeout_minutes: float | None = Field(default=None, gt=0, description=(
        "Time budget: no batch is asked after it (the batches under way finish)."))
    workers: int = Field(default=2, ge=1, le=64, description=(
        "Worker processes of the temporary local Dask cluster (one thread each). Ignored with an "
        "existing cluster's address (--dask-address or DRIFTLINE_DASK_ADDRESS)."))
