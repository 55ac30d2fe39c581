"""The training data as an MLflow dataset input whose digest is the DVC md5 (split out of tracking.py)."""

from __future__ import annotations

import json
import warnings

import pandas as pd


def dataset_input(frame: pd.DataFrame, source: str, name: str, digest: str, target: str, context: str):
    """An MLflow `DatasetInput` for `frame`.

    The schema is inferred from a sample: MLflow infers it row by row, which took 10 s for
    100,000 rows here. The profile still counts every row.
    """
    import mlflow.data
    from mlflow.entities import Dataset, DatasetInput, InputTag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "source can be interpreted in multiple ways"
        sample = mlflow.data.from_pandas(frame.head(1000), source=source, name=name, digest=digest,
                                         targets=target)._to_mlflow_entity()
    entity = Dataset(name=sample.name, digest=digest, source_type=sample.source_type, source=sample.source,
                     schema=sample.schema,
                     profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)}))
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])
