"""`training.estimator`: which estimator is fitted, chosen by `kind`.

The four built-ins keep their flat keys (`max_iter: 200`) and also take `params:` (any parameter
of the scikit-learn class behind them); `xgboost`, `lightgbm`, `sklearn` (an installed class by
import path) and `custom` (a factory function in the project) take `params:` only. What each
kind is and does (its classes, seed, threads, early stopping, inputs) is said once, in
`driftline.core.estimators`; these models only hold and check what the user wrote. The checks
against the real estimator's parameters run across sections (`config/checks.py`), since
classifier or regressor depends on `data.task`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, PrivateAttr

from driftline.config.strict import Strict

# Keys driftline sets itself: a value under `params` would silently fight it.
SEED_KEYS = ("random_state", "seed", "random_seed")
THREAD_KEYS = ("n_jobs", "nthread", "num_threads", "thread_count")
STOPPING_KEYS = ("early_stopping_rounds", "early_stopping", "n_iter_no_change", "validation_fraction",
                 "callbacks", "eval_set")


class EarlyStopping(Strict):
    """Stop adding rounds when `rounds` rounds in a row did not improve the loss on a validation
    slice: a seeded, hash-chosen share of the training part (never the holdout)."""

    rounds: int = Field(ge=1, description="Rounds without improvement on the validation slice before stopping.")
    validation_share: float = Field(default=0.1, gt=0, le=0.5, description=(
        "Share of the training part held out (by row hash, salted with training.seed) to decide when to stop."))


class _Kind(Strict):
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "Parameters of the estimator's class, by their names in its scikit-learn API (checked against it at "
        "load). Not the seed (training.seed), the threads (training.n_jobs) or early stopping (early_stopping)."))

    def flat(self) -> dict[str, Any]:
        """The flat keys of a built-in kind (none for the others), by the class's parameter names."""
        return {k: getattr(self, k) for k in flat_fields(self)}

    def estimator_params(self) -> dict[str, Any]:
        """Everything passed to the estimator's class: the flat keys, then `params` over them."""
        return {**self.flat(), **self.params}


_NOT_PARAMETERS = {"kind", "params", "early_stopping", "class_", "factory", "preprocessing"}


def flat_fields(est) -> list[str]:
    """The flat keys of a built-in kind (its class's parameters, written as keys of their own)."""
    return [k for k in type(est).model_fields if k not in _NOT_PARAMETERS]


class HistGradientBoosting(_Kind):
    kind: Literal["hist_gradient_boosting"]
    max_iter: int = Field(default=200, ge=1)
    learning_rate: float = Field(default=0.1, gt=0)
    max_leaf_nodes: int = Field(default=31, ge=2)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=20, ge=1)
    l2_regularization: float = Field(default=0.0, ge=0)
    early_stopping: EarlyStopping | None = None


class RandomForest(_Kind):
    kind: Literal["random_forest"]
    n_estimators: int = Field(default=200, ge=1)
    max_depth: int | None = Field(default=None, ge=1)
    min_samples_leaf: int = Field(default=1, ge=1)
    max_features: float | Literal["sqrt", "log2"] | None = "sqrt"


class LogisticRegression(_Kind):
    kind: Literal["logistic_regression"]
    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=1000, ge=1)


class Ridge(_Kind):
    kind: Literal["ridge"]
    alpha: float = Field(default=1.0, ge=0)


class XGBoost(_Kind):
    """XGBoost's scikit-learn API (`xgboost.XGBClassifier` / `XGBRegressor`), `tree_method: hist` on
    the CPU; categories as native categorical splits, missing values as its default branch."""

    kind: Literal["xgboost"]
    early_stopping: EarlyStopping | None = None


class LightGBM(_Kind):
    """LightGBM's scikit-learn API (`lightgbm.LGBMClassifier` / `LGBMRegressor`) in its deterministic
    CPU mode; categories as native categorical splits, missing values as its default branch."""

    kind: Literal["lightgbm"]
    early_stopping: EarlyStopping | None = None


Preprocessing = Literal["one_hot", "ordinal", "none"]
PREPROCESSING_HELP = (
    "What the estimator receives. one_hot: missing numbers imputed by the median (with an indicator), numbers "
    "standardized, categories one-hot (unknown ones all zero). ordinal: numbers as they are (missing kept), "
    "categories as codes (unknown and missing as NaN), for estimators that take NaN. none: the raw and derived "
    "columns as a DataFrame, for an estimator (or Pipeline) that does its own encoding.")


class SklearnClass(_Kind):
    """Any installed scikit-learn-compatible estimator class, by import path."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid", validate_by_name=True,
                              validate_by_alias=True, serialize_by_alias=True)
    kind: Literal["sklearn"]
    class_: str = Field(alias="class", pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
                        description="module.Class of an installed package, e.g. sklearn.ensemble.ExtraTreesClassifier")
    preprocessing: Preprocessing = Field(default="one_hot", description=PREPROCESSING_HELP)

    @property
    def module(self) -> str:
        return self.class_.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.class_.rsplit(".", 1)[1]


class Custom(_Kind):
    """A function of the project that returns an unfitted scikit-learn-compatible estimator, called as
    `factory(**params)`. Its module travels with the registered model."""

    kind: Literal["custom"]
    factory: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$",
                         description="module:function in a .py file of the project, e.g. models.credit:make_model")
    preprocessing: Preprocessing = Field(default="one_hot", description=PREPROCESSING_HELP)
    _source: str | None = PrivateAttr(default=None)  # read by config.load from the project
    _path: str | None = PrivateAttr(default=None)

    @property
    def module(self) -> str:
        return self.factory.split(":")[0]

    @property
    def attribute(self) -> str:
        return self.factory.split(":")[1]


Estimator = Annotated[
    HistGradientBoosting | RandomForest | LogisticRegression | Ridge | XGBoost | LightGBM | SklearnClass | Custom,
    Field(discriminator="kind"),
]

def demo_estimator() -> HistGradientBoosting:
    """The demo's estimator, the default for a params file without `training:`: gradient-boosted
    trees take numbers and categories as they come (no scaling, missing values allowed) and are a
    sound first model for most tables, for classification and regression alike."""
    return HistGradientBoosting(kind="hist_gradient_boosting", learning_rate=0.05, min_samples_leaf=40,
                                l2_regularization=1.0)
