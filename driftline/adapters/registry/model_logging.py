"""What a training run logs besides metrics: its data as an MLflow dataset input whose digest is
the DVC md5, and its model (split out of tracking.py, which keeps the store's calls)."""

from __future__ import annotations

import json
import warnings

import pandas as pd


def dataset_input(frame: pd.DataFrame, source: str, name: str, digest: str, target: str, context: str):
    """An MLflow `DatasetInput` for `frame`.

    The schema is inferred from a sample: MLflow infers it row by row, which took 10 s for
    100,000 rows here. The profile still counts every row.
    """
    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.entities import Dataset, DatasetInput, InputTag

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "source can be interpreted in multiple ways"
        sample = from_pandas(frame.head(1000), source=source, name=name, digest=digest,
                                         targets=target)._to_mlflow_entity()
    entity = Dataset(name=sample.name, digest=digest, source_type=sample.source_type, source=sample.source,
                     schema=sample.schema,
                     profile=json.dumps({"num_rows": len(frame), "num_elements": int(frame.size)}))
    return DatasetInput(entity, tags=[InputTag("mlflow.data.context", context)])


def pip_requirements(model=None) -> list[str]:
    """Pinned from the running environment: inferring them costs seconds per model. Beside the
    base, every installed distribution a class inside the model comes from (xgboost-cpu, lightgbm,
    the package of an `sklearn` kind's class), at the version it was trained with."""
    from importlib.metadata import version

    from driftline.core.model_facts import libraries

    base = {name: version(name) for name in ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle", "pyarrow")}
    found = libraries(model) if model is not None else {}
    return [f"{name}=={v}" for name, v in {**base, **found}.items()]


def log_sklearn_model(run_id: str, model, input_example: pd.DataFrame, output_example,
                      code_paths: list[str] | None = None) -> str:
    """Log `model` to the run as `model` (cloudpickle) with its signature and input example, and
    the project modules it runs (`code_paths`: custom derived features, a custom factory); its URI."""
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, output_example)
    with mlflow.start_run(run_id=run_id):
        info = mlflow.sklearn.log_model(
            model, name="model",
            # skops refuses a HistGradientBoosting Pipeline; cloudpickle loads it back
            # in the same environment, which the pinned requirements describe.
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            signature=signature, input_example=input_example,
            pip_requirements=pip_requirements(model), code_paths=code_paths or None,
        )
    return info.model_uri
