"""Category encoders that read a missing category the same way whatever pandas calls it.

A fitted encoder keeps None as a category of its own (driftline's frames give None), but reads a
NaN as "missing" (OrdinalEncoder) or imputes it (SimpleImputer), so the same row gave another
answer when a caller's frame held pandas' string dtype (NaN for missing: pandas 3 reads text that
way, and `mlflow models serve` parses JSON into it). These steps put every column through
`frames.as_text` first, which leaves driftline's own frames as they are: the fitted encoders, and
the answers on driftline's frames, are those of the plain sklearn encoders."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OrdinalEncoder

from driftline.core.frames import as_text


def text_columns(x):
    """`x` (a DataFrame, or an array of columns) with each column as `frames.as_text` gives it."""
    if isinstance(x, pd.DataFrame):
        given = {name: x[name] for name in x.columns}
        columns = {name: as_text(col) for name, col in given.items()}
        if all(columns[name] is col for name, col in given.items()):
            return x
        return pd.DataFrame(columns, index=x.index)
    array = np.asarray(x, dtype=object)
    array = array.reshape(-1, 1) if array.ndim == 1 else array
    return np.column_stack([as_text(pd.Series(array[:, j])).to_numpy() for j in range(array.shape[1])])


class CategoryCodes(OrdinalEncoder):
    """OrdinalEncoder over `text_columns`: a subclass, so the serving plan still reads its codes."""

    def fit(self, X, y=None):
        return super().fit(text_columns(X), y)

    def transform(self, X):
        return super().transform(text_columns(X))


class AsText(TransformerMixin, BaseEstimator):
    """The first step of the one-hot path: `text_columns`, learning nothing."""

    def fit(self, X, y=None):
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = np.shape(X)[1]
        return self

    def transform(self, X):
        return text_columns(X)

    def get_feature_names_out(self, input_features=None):
        if input_features is not None:
            return np.asarray(input_features, dtype=object)
        return getattr(self, "feature_names_in_", np.asarray([f"x{i}" for i in range(self.n_features_in_)],
                                                              dtype=object))
