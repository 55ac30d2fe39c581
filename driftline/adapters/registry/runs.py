"""MLflow tracking: the experiment, its runs and their artifacts. The half of the MLflow adapter
that knows no registered model; `MlflowStore` (store.py) adds the model registry and its aliases
on top of it. Apart so that runs and the registry each read in one place and both modules stay
under 300 lines. The client is built by `start()`, never at import time.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Self

import pandas as pd

from driftline.adapters.registry.faults import RegistryError, call

# MLflow 3's UI opens an experiment of no stated kind on its GenAI overview (traces, tokens); this
# kind opens it on the training runs.
KIND_TAG, MODEL_DEVELOPMENT = "mlflow.experimentKind", "custom_model_development"


class MlflowRuns:
    """The experiment, its runs and their artifacts on one tracking server (`MlflowStore` adds the
    registry)."""

    def __init__(self, tracking_uri: str, artifact_location: str, experiment: str):
        self.tracking_uri, self.artifact_location = tracking_uri, artifact_location
        self.experiment = experiment
        self._client: Any = None  # an MlflowClient, once started
        self.experiment_id: str | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> Self:
        import mlflow
        from mlflow import MlflowClient

        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        self._client = client = MlflowClient(self.tracking_uri, self.tracking_uri)
        exp = self._call("find the experiment", client.get_experiment_by_name, self.experiment)
        if exp is None:
            self.experiment_id = client.create_experiment(
                self.experiment, artifact_location=self.artifact_location, tags={KIND_TAG: MODEL_DEVELOPMENT})
        else:
            self.experiment_id = exp.experiment_id
            if exp.tags.get(KIND_TAG) is None:  # made before driftline set it, or by hand
                self._call("mark the experiment", client.set_experiment_tag, self.experiment_id, KIND_TAG,
                           MODEL_DEVELOPMENT)
            here, there = exp.artifact_location.rstrip("/"), self.artifact_location.rstrip("/")
            if here != there and there.startswith("s3://"):
                # An experiment keeps the artifact location it was created with: say so, rather
                # than write where the setting does not point.
                raise RegistryError(f"experiment {self.experiment!r} keeps its artifacts at {here}, not {there} "
                                    "(DRIFTLINE_ARTIFACT_LOCATION): use a new registry.experiment for the new "
                                    "location, or unset the setting")
        return self

    def stop(self) -> None:
        pass  # MLflow keeps its own engine per tracking URI for the process: nothing of ours is open

    @property
    def client(self):
        if self._client is None:
            self.start()
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):
        """A registry call told apart: "absent" as the caller says, "unreachable" raised (registry_faults)."""
        return call(self.tracking_uri, what, fn, *args, **kwargs)

    # -- runs ----------------------------------------------------------------------------
    def start_run(self, name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        return run.info.run_id

    def log(self, run_id: str, params: dict[str, Any] | None = None,
            metrics: dict[str, float] | None = None, tags: dict[str, str] | None = None) -> None:
        import time

        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
            params=[Param(k, str(v)[:6000]) for k, v in (params or {}).items()],
            tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()],
        )

    @contextlib.contextmanager
    def _artifacts(self, action: str) -> Iterator[None]:
        """Artifacts on S3: a store failure becomes one sentence naming the endpoint and bucket."""
        try:
            yield
        except Exception as err:
            if not self.artifact_location.startswith("s3://"):
                raise
            from driftline.adapters import s3

            cause = s3.botocore_error(err)
            if cause is None:
                raise
            where = s3.S3Location.parse(self.artifact_location, os.environ.get("MLFLOW_S3_ENDPOINT_URL"))
            raise s3.explain(cause, where, f"{action} MLflow artifacts in") from None

    def log_text(self, run_id: str, text: str, path: str) -> None:
        with self._artifacts("write"):
            self.client.log_text(run_id, text, path)

    def log_frame(self, run_id: str, frame: pd.DataFrame, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp, self._artifacts("write"):
            local = Path(tmp) / Path(path).name
            frame.to_parquet(local, index=False)
            self.client.log_artifact(run_id, str(local), str(Path(path).parent))

    def log_bytes(self, run_id: str, data: bytes, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp, self._artifacts("write"):
            local = Path(tmp) / Path(path).name
            local.write_bytes(data)
            self.client.log_artifact(run_id, str(local), str(Path(path).parent))

    def read_bytes(self, run_id: str, path: str) -> bytes:
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp, self._artifacts("read"):
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp,
                                                        tracking_uri=self.tracking_uri)
            return Path(local).read_bytes()

    def runs_tagged(self, tag: str, value: str, max_results: int = 100) -> list:
        """This experiment's runs carrying `tag` = `value` (newest first)."""
        return self.client.search_runs([self.experiment_id], f"tags.`{tag}` = '{value}'", max_results=max_results,
                                       order_by=["attributes.start_time DESC"])

    def log_dataset(self, run_id: str, frame: pd.DataFrame, source: str, name: str, digest: str,
                    target: str, context: str) -> None:
        """Log the data as an MLflow input whose digest is the DVC md5."""
        from driftline.adapters.registry.model_logging import dataset_input

        self.client.log_inputs(run_id, datasets=[dataset_input(frame, source, name, digest, target, context)])

    def log_model(self, run_id: str, model, input_example: pd.DataFrame, output_example,
                  code_paths: list[str] | None = None) -> str:
        from driftline.adapters.registry.model_logging import log_sklearn_model

        with self._artifacts("write"):
            return log_sklearn_model(run_id, model, input_example, output_example, code_paths)

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status)

    def run_url(self, ui_url: str, run_id: str) -> str:
        return f"{ui_url.rstrip('/')}/#/experiments/{self.experiment_id}/runs/{run_id}"

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)
