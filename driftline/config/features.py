"""`data.derived`: features computed from the raw ones, inside the registered model.

Each entry is one kind from a small vocabulary (a discriminated union on `kind`, like the
estimator). The transformer that computes them (driftline.core.features) is the first step of
the model's sklearn Pipeline, so the server computes the same values from the same raw request.
What a kind learns (quantiles, bin edges, frequencies, target encodings) is learned on the
training part only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, model_validator

from driftline.config.strict import Strict

Name = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class Entry(Strict):
    """What every kind shares: its name, and the limits validation holds its computed values to
    on the training data (like a raw feature's)."""

    name: Name
    max_null_rate: float | None = Field(default=None, ge=0, le=1, description=(
        "Allowed share of missing values after computation; defaults to the largest limit of the "
        "columns it reads (a ratio may be missing where its inputs may)."))
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _bounds(self):
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class Ratio(Entry):
    """numerator / denominator (missing where the denominator is 0)."""

    kind: Literal["ratio"]
    numerator: str
    denominator: str


class Difference(Entry):
    kind: Literal["difference"]
    left: str
    right: str


class Log1p(Entry):
    """log(1 + x) for x > -1, missing otherwise: for long-tailed amounts."""

    kind: Literal["log1p"]
    column: str


class Clip(Entry):
    """The column clipped to fixed bounds, or to quantiles learned on the training part."""

    kind: Literal["clip"]
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


class QuantileBins(Entry):
    """The bin number (0 .. bins-1) of quantile bins learned on the training part."""

    kind: Literal["quantile_bins"]
    column: str
    bins: int = Field(default=10, ge=2, le=100)


class Interaction(Entry):
    """The product of two or three numeric columns."""

    kind: Literal["interaction"]
    columns: list[str] = Field(min_length=2, max_length=3)


class Frequency(Entry):
    """The share of training rows with the row's category (0 for a category never seen)."""

    kind: Literal["frequency"]
    column: str


class TargetEncoding(Entry):
    """scikit-learn's TargetEncoder, cross-fitted: a training row's value never uses its own
    label (five folds, a row's fold a hash of its features salted with training.seed); served rows
    use the whole training part."""

    kind: Literal["target_encoding"]
    column: str


PARTS = ("year", "quarter", "month", "day", "dayofweek", "dayofyear", "hour", "weekend")


class DatePart(Entry):
    """A part of a datetime feature: year, quarter, month, day, dayofweek (Monday 0), dayofyear,
    hour (UTC), or weekend (1 on Saturday and Sunday)."""

    kind: Literal["date_part"]
    column: str
    part: Literal[PARTS]  # type: ignore[valid-type]  # the names are in PARTS, once


class DaysSince(Entry):
    """Days (fractional) from a datetime feature to another one (`until`, such as the
    application's own time) or to a fixed date (`date`); negative when it lies after. Never
    "now": the served value would then drift away from the one the model was gated with."""

    kind: Literal["days_since"]
    column: str
    until: str | None = None
    date: str | None = Field(default=None, description="ISO 8601, e.g. 2026-01-01")

    @model_validator(mode="after")
    def _one_end(self) -> DaysSince:
        if (self.until is None) == (self.date is None):
            raise ValueError("give exactly one of until (a datetime feature) and date (a fixed ISO 8601 date)")
        if self.date is not None:
            try:
                datetime.fromisoformat(self.date)
            except ValueError:
                raise ValueError(f"date {self.date!r} is not an ISO 8601 date (YYYY-MM-DD)") from None
        return self


class Function(Entry):
    """A function of your own: `module:function` in a .py file of the project, found from the
    params file's folder (`features` is features.py there, `pkg.feats` is pkg/feats.py). It gets
    a DataFrame of `columns` (raw values, as a request holds them) and returns one number per row.
    It learns nothing: whatever it needs to know is in its code. Its source travels inside the
    registered model (and beside it, as MLflow code_paths), so the server runs the code the model
    was gated with."""

    kind: Literal["custom"]
    function: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
                          description="module:function, e.g. features:affordability")
    columns: list[str] = Field(min_length=1)
    _source: str | None = PrivateAttr(default=None)  # read by config.load from the project
    _path: str | None = PrivateAttr(default=None)

    @property
    def module(self) -> str:
        return self.function.split(":")[0]

    @property
    def attribute(self) -> str:
        return self.function.split(":")[1]


Derived = Annotated[
    Ratio | Difference | Log1p | Clip | QuantileBins | Interaction | Frequency | TargetEncoding | DatePart
    | DaysSince | Function,
    Field(discriminator="kind"),
]

NUMERIC_INPUTS = ("ratio", "difference", "log1p", "clip", "quantile_bins", "interaction")
DATETIME_INPUTS = ("date_part", "days_since")


def inputs(d: Derived) -> list[tuple[str, str]]:
    """(field, column) for every raw column the entry reads."""
    if isinstance(d, Ratio):
        return [("numerator", d.numerator), ("denominator", d.denominator)]
    if isinstance(d, Difference):
        return [("left", d.left), ("right", d.right)]
    if isinstance(d, Interaction | Function):
        return [(f"columns.{i}", c) for i, c in enumerate(d.columns)]
    if isinstance(d, DaysSince) and d.until is not None:
        return [("column", d.column), ("until", d.until)]
    return [("column", d.column)]
