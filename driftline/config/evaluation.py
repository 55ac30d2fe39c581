"""The `evaluation:` section: metric thresholds, fairness gates, behavioral tests, the champion comparison."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from driftline.config.sections import Strict


class Threshold(Strict):
    min: float | None = None
    max: float | None = None


class FairnessGate(Strict):
    attribute: str
    metric: Literal["accuracy", "recall", "precision", "selection_rate", "mae"] = "recall"
    max_gap: float = Field(ge=0)
    min_group_size: int = Field(default=100, ge=1)


class Invariance(Strict):
    kind: Literal["invariance"]
    name: str
    feature: str
    values: list[str | float] = Field(min_length=1, description="Values to substitute.")
    max_mean_change: float = Field(default=0.02, ge=0, description="Mean |score change|.")


class Directional(Strict):
    kind: Literal["directional"]
    name: str
    feature: str
    shift: float = Field(description="Added to the numeric feature.")
    expect: Literal["increase", "decrease"]
    tolerance: float = Field(default=0.0, ge=0, description="Score moves smaller than this are ignored.")
    max_violation_rate: float = Field(default=0.05, ge=0, le=1)


class Case(Strict):
    record: dict[str, str | float | int | None] = Field(
        description="Feature values; features left out take the training median or mode."
    )
    expect: str | float | int | None = Field(default=None, description="Expected class.")
    expect_min: float | None = Field(default=None, description="Lower bound (score or value).")
    expect_max: float | None = Field(default=None, description="Upper bound (score or value).")


class MinimumFunctionality(Strict):
    kind: Literal["minimum_functionality"]
    name: str
    cases: list[Case] = Field(min_length=1)
    min_pass_rate: float = Field(default=1.0, ge=0, le=1)


Behavioral = Annotated[Invariance | Directional | MinimumFunctionality, Field(discriminator="kind")]


class ComparisonConfig(Strict):
    metric: str | None = Field(default=None, description="Defaults to evaluation.primary_metric.")
    margin: float = Field(
        default=0.01, ge=0,
        description="The challenger may be worse than the champion by at most this much "
        "(lower end of the bootstrap confidence interval of challenger - champion).",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    bootstrap_samples: int = Field(default=500, ge=50)
    method: Literal["bootstrap", "delong"] = Field(default="bootstrap", description=(
        "bootstrap: the paired bootstrap of the difference (any metric); delong: DeLong's closed-form interval "
        "for the difference of two ROC AUCs on the same rows (roc_auc on a binary task; no resampling)."))


class PinnedSet(Strict):
    """A fixed evaluation set on which the challenger and the champion are also scored, beside the
    new holdout: a poisoned new version poisons its own holdout too, so both models are judged again
    on rows the new data cannot have rewritten."""

    source: Literal["champion_holdout", "golden", "none"] = Field(default="champion_holdout", description=(
        "champion_holdout: the champion's holdout rows from the data version it was trained on (read from DVC "
        "by its recorded md5), as that version labelled them; golden: the file at `path`; none: no pinned set."))
    path: str | None = Field(default=None, description=(
        "golden: a CSV or Parquet file in the project (version it, e.g. with DVC) holding the features and "
        "the target, never trained on."))
    margin: float | None = Field(default=None, ge=0, description="Defaults to evaluation.comparison.margin.")
    min_rows: int = Field(default=200, ge=1, description="Fewer rows (unseen by both models): not judged, said.")

    @model_validator(mode="after")
    def _golden_has_a_path(self) -> PinnedSet:
        if (self.source == "golden") != (self.path is not None):
            raise ValueError("source: golden takes a path, and only golden does")
        return self


class EvaluationConfig(Strict):
    primary_metric: str
    decision_threshold: float = Field(default=0.5, gt=0, lt=1)
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    fairness: list[FairnessGate] = Field(default_factory=list)
    behavioral: list[Behavioral] = Field(default_factory=list)
    comparison: ComparisonConfig = ComparisonConfig()
    pinned: PinnedSet = PinnedSet()
