"""Turning a validated table into model inputs: the feature frame and the target."""

from __future__ import annotations

import numpy as np
import pandas as pd

from driftline.config import DataConfig


def features(df: pd.DataFrame, data: DataConfig) -> pd.DataFrame:
    """The feature columns in config order, numeric as float64 and categoricals as object strings.

    One dtype per kind keeps training, the saved signature and serving in agreement.
    """
    out = {}
    for f in data.features:
        col = df[f.name]
        if f.type == "numeric":
            out[f.name] = pd.to_numeric(col, errors="raise").astype("float64")
        else:
            text = col.astype("string")
            out[f.name] = text.astype(object).where(text.notna(), None)
    return pd.DataFrame(out, index=df.index)


def target(df: pd.DataFrame, data: DataConfig) -> np.ndarray:
    y = df[data.target]
    if data.task == "regression":
        return y.to_numpy(dtype="float64")
    return y.to_numpy()


def typical_record(x: pd.DataFrame, data: DataConfig) -> dict[str, object]:
    """Median of numeric and mode of categorical features: the filler for hand-written cases."""
    record: dict[str, object] = {}
    for f in data.features:
        col = x[f.name].dropna()
        if f.type == "numeric":
            record[f.name] = float(col.median()) if len(col) else 0.0
        else:
            record[f.name] = str(col.mode().iloc[0]) if len(col) else None
    return record
