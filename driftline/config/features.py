"""`data.derived`: features computed from the raw ones, inside the registered model.

Each entry is one kind from a small vocabulary (a discriminated union on `kind`, like the
estimator). The transformer that computes them (driftline.core.features) is the first step of
the model's sklearn Pipeline, so the server computes the same values from the same raw request.
What a kind learns (quantiles, bin edges, frequencies, target encodings) is learned on the
training part only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from driftline.config.strict import Strict

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Ratio(Strict):
    """numerator / denominator (missing where the denominator is 0)."""

    kind: Literal["ratio"]
    name: Name
    numerator: str
    denominator: str


class Difference(Strict):
    kind: Literal["difference"]
    name: Name
    left: str
    right: str


class Log1p(Strict):
    """log(1 + x) for x > -1, missing otherwise: for long-tailed amounts."""

    kind: Literal["log1p"]
    name: Name
    column: str


class Clip(Strict):
    """The column clipped to fixed bounds, or to quantiles learned on the training part."""

    kind: Literal["clip"]
    name: Name
    column: str
    lower: float | None = None
    upper: float | None = None
    quantiles: list[float] | None = Field(default=None, min_length=2, max_length=2, description="e.g. [0.01, 0.99]")

    @model_validator(mode="after")
    def _one_way(self) -> Clip:
        if self.quantiles is None and self.lower is None and self.upper is None:
            raise ValueError("give lower and/or upper, or quantiles")
        if self.quantiles is not None and (self.lower is not None or self.upper is not None):
            raise ValueError("give either fixed bounds (lower/upper) or quantiles, not both")
        if self.quantiles is not None and not 0 <= self.quantiles[0] < self.quantiles[1] <= 1:
            raise ValueError(f"quantiles must rise within [0, 1], got {self.quantiles}")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower ({self.lower}) is greater than upper ({self.upper})")
        return self


class QuantileBins(Strict):
    """The bin number (0 .. bins-1) of quantile bins learned on the training part."""

    kind: Literal["quantile_bins"]
    name: Name
    column: str
    bins: int = Field(default=10, ge=2, le=100)


class Interaction(Strict):
    """The product of two or three numeric columns."""

    kind: Literal["interaction"]
    name: Name
    columns: list[str] = Field(min_length=2, max_length=3)


class Frequency(Strict):
    """The share of training rows with the row's category (0 for a category never seen)."""

    kind: Literal["frequency"]
    name: Name
    column: str


class TargetEncoding(Strict):
    """scikit-learn's TargetEncoder, cross-fitted: a training row's value never uses its own
    label (five folds, shuffled with training.seed); served rows use the whole training part."""

    kind: Literal["target_encoding"]
    name: Name
    column: str


Derived = Annotated[
    Ratio | Difference | Log1p | Clip | QuantileBins | Interaction | Frequency | TargetEncoding,
    Field(discriminator="kind"),
]

NUMERIC_INPUTS = ("ratio", "difference", "log1p", "clip", "quantile_bins", "interaction")


def inputs(d: Derived) -> list[tuple[str, str]]:
    """(field, column) for every raw column the entry reads."""
    if isinstance(d, Ratio):
        return [("numerator", d.numerator), ("denominator", d.denominator)]
    if isinstance(d, Difference):
        return [("left", d.left), ("right", d.right)]
    if isinstance(d, Interaction):
        return [(f"columns.{i}", c) for i, c in enumerate(d.columns)]
    return [("column", d.column)]
