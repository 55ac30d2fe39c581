"""The sections of `params.yaml` as strict, frozen pydantic models (extra keys are errors).

Variants are discriminated unions chosen by a `kind` field, so a user switches the
estimator in YAML without editing code. Evaluation and rollout have modules of their own.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from driftline.config.estimators import Estimator, demo_estimator
from driftline.config.features import Derived
from driftline.config.search import SearchConfig
from driftline.config.strict import Strict
from driftline.core.metrics import Task

# --- data ---------------------------------------------------------------------------


class Feature(Strict):
    name: str
    type: Literal["numeric", "categorical", "datetime"] = Field(description=(
        "datetime: ISO 8601 text (or a datetime column in Parquet), read only by derived features "
        "(date_part, days_since); the estimator never sees the raw timestamp."))
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = Field(
        default=None, description="Allowed values of a categorical feature; others are rejected."
    )
    max_null_rate: float | None = Field(
        default=None, ge=0, le=1, description="Overrides data.max_null_rate for this column."
    )

    @model_validator(mode="after")
    def _check(self) -> Feature:
        if self.type == "numeric" and self.categories is not None:
            raise ValueError("categories are only for categorical features")
        if self.type != "numeric" and (self.min is not None or self.max is not None):
            raise ValueError("min/max are only for numeric features")
        if self.type == "datetime" and self.categories is not None:
            raise ValueError("categories are only for categorical features")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


def names_by_type(features: list[Feature]) -> tuple[list[str], list[str]]:
    """The numeric and the categorical feature names, each in config order."""
    return ([f.name for f in features if f.type == "numeric"],
            [f.name for f in features if f.type == "categorical"])


class DataConfig(Strict):
    path: str = Field(description=(
        "CSV or Parquet file, or a directory of Parquet files (written with a trailing /, e.g. data/loans/), "
        "relative to the project directory. A directory is read as one table (its files in name order); "
        "training.distributed reads it as partitions on the Dask workers."))
    target: str
    task: Task
    features: list[Feature] = Field(min_length=1)
    derived: list[Derived] = Field(default_factory=list, description="Features computed from the raw ones "
                                   "inside the model (driftline/config/features.py lists the kinds).")
    time_column: str | None = None
    sensitive_attributes: list[str] = Field(
        default_factory=list, description="Columns used for fairness slices, never as features."
    )
    max_null_rate: float = Field(
        default=0.0, ge=0, le=1, description="Allowed share of missing values per feature."
    )
    positive_class: str | int | None = Field(
        default=None,
        description="Binary tasks: the class whose probability is the score and that precision, "
        "recall, f1, selection rate and roc_auc are about. Defaults to the second class in sorted "
        "order (1 of 0/1). Compared as text, so 1 matches a target stored as '1'.",
    )

    @field_validator("positive_class", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"YAML reads an unquoted yes/no/true/false as the boolean {value}; "
                             "quote the class, e.g. 'yes'")
        return value

    @model_validator(mode="after")
    def _check(self) -> DataConfig:
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature listed twice: {', '.join(dupes)}")
        datetimes = {f.name for f in self.features if f.type == "datetime"}
        for col in [self.target, self.time_column, *self.sensitive_attributes]:
            # The time column may also be a datetime feature: "days since" it needs it served.
            if col is not None and col in names and not (col == self.time_column and col in datetimes):
                raise ValueError(f"column {col!r} cannot be both a feature and target/time/sensitive")
        if not self.path.endswith((".csv", ".parquet", ".pq", "/")):
            raise ValueError(f"path must end in .csv or .parquet, or in / for a directory of Parquet files, "
                             f"got {self.path!r}")
        if self.positive_class is not None and self.task != "binary":
            raise ValueError(f"positive_class is only for binary tasks, not {self.task}")
        return self

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def columns(self) -> list[str]:
        extra = [self.time_column] if self.time_column else []
        return list(dict.fromkeys([*self.feature_names, self.target, *extra, *self.sensitive_attributes]))


# --- validation -----------------------------------------------------------------------


class DistributionCheck(Strict):
    enabled: bool = True
    max_drift_share: float = Field(
        default=0.5, ge=0, le=1,
        description="Reject the data when more than this share of features drifted "
        "from the champion's training reference (Evidently).",
    )
    sample_size: int = Field(default=10_000, ge=100)


class PreviousVersion(Strict):
    """A new data version against the data the champion was trained on, read by the DVC md5 its
    version records: labels that changed on rows present in both, class balance, categories."""

    enabled: bool = Field(default=True, description="false: no comparison with the champion's data version.")
    required: bool = Field(default=True, description=(
        "true: a champion's data version that cannot be read (gone from the DVC remote) fails validation, "
        "naming why; false: the comparison is then reported as skipped."))
    max_label_change_share: float = Field(default=0.01, ge=0, le=1, description=(
        "Rows present in both versions (matched on their features) whose label changed, as a share of them."))
    min_matched_rows: int = Field(default=100, ge=1, description=(
        "Fewer rows present in both versions than this: label changes are not judged (a wholly new table)."))
    max_class_share_change: float = Field(default=0.05, ge=0, le=1, description=(
        "Largest change of a class's share (or, for regression, of the target's median in standard deviations)."))
    max_category_share_change: float = Field(default=0.10, ge=0, le=1, description=(
        "Largest change of a category's share within its feature."))
    min_category_rows: int = Field(default=30, ge=1, description=(
        "A category the champion had at least this many rows of, that vanished or fell below it, is named "
        "and stops the run (for sensitive attributes, their fairness gate's min_group_size)."))


class ValidationConfig(Strict):
    min_rows: int = Field(default=1000, ge=1)
    max_duplicate_share: float = Field(default=0.01, ge=0, le=1)
    allow_extra_columns: bool = True
    max_unknown_category_share: float = Field(default=0.0, ge=0, le=1)
    min_class_share: float = Field(
        default=0.001, ge=0, le=0.5, description="Each class must be at least this share."
    )
    distribution: DistributionCheck = DistributionCheck()
    max_near_duplicate_share: float = Field(default=0.01, ge=0, le=1, description=(
        "Share of rows allowed to be near-copies of another row: every feature equal once numbers are rounded "
        "to near_duplicate_digits significant digits and text is trimmed and lower-cased. Copies that are "
        "allowed are kept on one side of the split."))
    near_duplicate_digits: int = Field(default=3, ge=1, le=15, description=(
        "Significant digits numbers are rounded to before rows are compared as near-duplicates."))
    previous: PreviousVersion = Field(default_factory=lambda: PreviousVersion(), description=(
        "The new data version against the one the champion was trained on (read from DVC by its recorded md5)."))


# --- split and training ----------------------------------------------------------------


class SplitConfig(Strict):
    method: Literal["hash", "time"] = Field(
        default="hash",
        description="hash: each row's holdout membership is a hash of its contents, so a row stays "
        "on the same side across data versions and training seeds and the champion is never scored "
        "on rows it trained on. time: the latest rows (by data.time_column) are the holdout.",
    )
    test_size: float = Field(default=0.2, gt=0, lt=1)
    seed: int = Field(default=0, description="Salt of the hash split; keep it fixed across runs.")


class Distributed(Strict):
    """The fit on a Dask cluster (xgboost.dask): the data read as partitions on the workers, never
    gathered in one process; validation, the split and the encoders computed as Dask aggregations."""

    engine: Literal["dask"] = Field(default="dask", description=(
        "dask: the cluster at DRIFTLINE_DASK_ADDRESS, else a temporary local one of local_workers processes."))
    partitions: int = Field(default=64, ge=1, description=(
        "Partitions the data is read into across the workers. The fit is reproducible for a given number of "
        "workers, partitions and library versions (the run records them as the cluster shape)."))
    search_sample_rows: int = Field(default=2_000_000, ge=1000, description=(
        "The search's trials run in-process on a seeded, hash-chosen sample of about this many training rows; "
        "the final fit runs on every row."))
    local_workers: int = Field(default=2, ge=1, description=(
        "Worker processes (one thread each) of the temporary local cluster, when DRIFTLINE_DASK_ADDRESS is unset."))


class TrainingConfig(Strict):
    seed: int = 42
    estimator: Estimator = Field(default_factory=demo_estimator)
    n_jobs: int | None = Field(default=None, ge=1, description=(
        "Threads of every kind's fit (n_jobs, nthread or num_threads, and OpenMP). Unset: the library's own "
        "default for the final fit (every core for the boosted trees, one for random_forest) and one thread "
        "per search trial, so that trials on a cluster's worker threads do not oversubscribe the cores."))
    search: SearchConfig | None = Field(default=None, description="Hyperparameter search before the final fit "
                                        "(driftline/config/search.py).")
    distributed: Distributed | None = Field(default=None, description=(
        "Fit on a Dask cluster instead of in this process (kinds with a distributed fit only: xgboost)."))
    checkpoint_every: int | None = Field(default=None, ge=1, description=(
        "Boosting rounds between checkpoints of the distributed fit in the artifact store (keyed by the data md5, "
        "the config and the cluster shape): a fit started again after its flow run was killed resumes there."))
    warm_start: Literal["champion"] | None = Field(default=None, description=(
        "champion: the distributed fit continues from the champion's booster (its rounds up to its best one) "
        "with the champion's fitted encoders, on this run's data; refused, naming why, when they do not fit it."))



class RegistryConfig(Strict):
    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    experiment: str = "driftline"
    reference_rows: int = Field(default=10_000, ge=100, description="Training sample kept as reference.")
    description: str = Field(default="", description="Intended use, for the model card: who decides what with it.")
    limitations: str = Field(default="", description="Known limitations, for the model card.")
    pictures: bool = Field(default=True, description=(
        "Draw the training run's pictures (plots/*.png: curves, calibration, importance, slices, "
        "bootstrap). false skips them, e.g. to measure what they cost."))



class MonitoringConfig(Strict):
    """How `drift_monitor` reads live traffic and decides that drift is real."""

    window_hours: float = Field(default=24.0, gt=0, description="Window of the prediction log to judge.")
    last_rows: int | None = Field(default=None, ge=1, description="Instead of the whole window: its newest N rows.")
    min_rows: int = Field(default=500, ge=1, description="Fewer rows in the window: too little data, no verdict.")
    drift_share: float = Field(default=0.25, gt=0, le=1,
                               description="Drift when at least this share of the features drifted.")
    drift_columns: list[str] = Field(default_factory=list, description="Columns whose drift alone counts as drift "
                                     "('prediction' is the model's score).")
    cooldown_hours: float = Field(default=24.0, ge=0, description="No drift event within this long of the last "
                                  "retraining or drift event.")
    min_labels: int = Field(default=200, ge=1, description="Labelled rows (feedback) before accuracy is judged.")
    max_accuracy_drop: float = Field(default=0.05, ge=0, le=1, description="Performance decline: the 95% upper "
                                     "bound of live accuracy is below holdout accuracy minus this.")
    retrain_on_decline: bool = Field(default=True, description="A realized decline (live accuracy on labels) alone "
                                     "counts as drift; read when monitoring.trigger is unset or 'any'.")
    trigger: Literal["features", "estimated_performance", "realized_performance", "any"] | None = Field(
        default=None, description="What makes drift a retraining: 'features' (monitoring.drift_share or "
        "drift_columns), 'estimated_performance' (the primary metric estimated from calibrated scores, or "
        "realized on labels above monitoring.min_label_coverage), 'realized_performance' (the primary metric "
        "on labels), or 'any' of them. Unset: features, and realized accuracy when retrain_on_decline.")
    max_metric_drop: float = Field(default=0.05, ge=0, description="Performance decline of the primary metric "
                                   "(accuracy keeps max_accuracy_drop): its 95% bound past the holdout value by "
                                   "this much (for rmse and mae: this share of the holdout value).")
    min_label_coverage: float = Field(default=0.5, gt=0, le=1, description="Realized values replace the estimate "
                                      "only when labels came back for at least this share of the window's rows.")
    past_windows: int = Field(default=6, ge=0, description="Earlier windows whose labels arrived since they were "
                              "judged, re-judged on them per run (realized beside estimated).")
    label_horizon_days: float = Field(default=400.0, gt=0, description="Windows older than this are not re-judged; "
                                      "keep the prediction log at least this long.")
    report: Literal["driftline", "evidently"] = Field(
        default="driftline", description="The HTML report: driftline's, drawn from the decision's own statistics "
        "over every row, or Evidently's interactive drift and data summary presets on a sample (about 3 s more).")
    report_rows: int = Field(default=10_000, ge=100, description="Rows of the window sampled into Evidently's "
                             "HTML report (monitoring.report: evidently; the decision always uses the whole window).")
