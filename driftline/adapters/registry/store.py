"""MLflow adapter: runs (from `runs.MlflowRuns`, which `MlflowStore` extends), the model registry
and its aliases.

Aliases are the only deployment state: `@champion` (serving), `@challenger` (candidate),
`@previous` (rollback target). The client is built by `start()`, never at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from driftline.adapters.registry.faults import RegistryError, RegistryUnreachable, call  # noqa: F401 - re-exported
from driftline.adapters.registry.runs import MlflowRuns
from driftline.adapters.registry.tags import ALIAS_TAG, FLOW_RUN_TAG, FROM_TAG, MODEL_TAG, REASON_TAG, TO_TAG

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
HISTORY_EXPERIMENT = "driftline-alias-history"
Point = Callable[["MlflowStore", str, str, str], object]  # (store, version, reason, flow run) moves an alias


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str
    aliases: list[str]
    tags: dict[str, str]
    created: int

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/model"


class MlflowStore(MlflowRuns):
    """The experiment, runs and artifacts (`MlflowRuns`), and the model registry: versions, aliases
    and their history."""

    def __init__(self, tracking_uri: str, artifact_location: str, experiment: str, model_name: str,
                 description: str = ""):
        super().__init__(tracking_uri, artifact_location, experiment)
        self.model_name = model_name
        self.description = description  # the registered model's in the MLflow UI (registry.description)

    # -- registry -------------------------------------------------------------------------
    def _info(self, mv, aliases: list[str] | None = None) -> VersionInfo:
        return VersionInfo(str(mv.version), mv.run_id, list(mv.aliases or aliases or []),
                           dict(mv.tags or {}), int(mv.creation_timestamp or 0))

    def _model(self):
        """The registered model, or None when it does not exist (never when the registry fails)."""
        return self._call(f"read registered model {self.model_name}", self.client.get_registered_model,
                          self.model_name, absent=None)

    def aliases(self) -> dict[str, str]:
        """alias -> version; search results do not carry aliases, the registered model does."""
        model = self._model()
        return {a: str(v) for a, v in model.aliases.items()} if model else {}

    def version_by_alias(self, alias: str) -> VersionInfo | None:
        mv = self._call(f"read {self.model_name}@{alias}", self.client.get_model_version_by_alias,
                        self.model_name, alias, absent=None)
        return self._info(mv) if mv is not None else None

    def version(self, version: str) -> VersionInfo | None:
        mv = self._call(f"read {self.model_name} version {version}", self.client.get_model_version,
                        self.model_name, version, absent=None)
        return self._info(mv) if mv is not None else None

    def model_tags(self) -> dict[str, str]:
        """Registered-model tags: where the rollout settings live."""
        model = self._model()
        return dict(model.tags or {}) if model else {}

    def set_model_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self._call(f"set tag {key} on {self.model_name}", self.client.set_registered_model_tag,
                       self.model_name, key, str(value))

    def set_version_tag(self, version: str, key: str, value: str) -> None:
        self._call(f"set tag {key} on {self.model_name} version {version}", self.client.set_model_version_tag,
                   self.model_name, version, key, value)

    def move_alias(self, alias: str, version: str | None, reason: str, flow_run_id: str = "-") -> None:
        """Point `alias` at `version` (None removes it) and append the change to the history."""
        before = self.aliases().get(alias)
        if before == version:
            return
        if version is None:
            self._call(f"remove {self.model_name}@{alias}", self.client.delete_registered_model_alias,
                       self.model_name, alias)
        else:
            self._call(f"point {self.model_name}@{alias} at version {version}",
                       self.client.set_registered_model_alias, self.model_name, alias, version)
        self.record_change(alias, before, version, reason, flow_run_id)

    def record_change(self, alias: str, before: str | None, after: str | None, reason: str,
                      flow_run_id: str = "-") -> None:
        """Append a change to the history: an alias moved, or a rollout lease broken by hand. Append-
        only: one MLflow run per change, in its own experiment."""
        exp = self.client.get_experiment_by_name(HISTORY_EXPERIMENT)
        exp_id = exp.experiment_id if exp else self.client.create_experiment(
            HISTORY_EXPERIMENT, artifact_location=self.artifact_location.rstrip("/") + "/history")
        run = self.client.create_run(exp_id, run_name=f"{self.model_name}@{alias}", tags={
            MODEL_TAG: self.model_name, ALIAS_TAG: alias, FROM_TAG: before or "-", TO_TAG: after or "-",
            REASON_TAG: reason, FLOW_RUN_TAG: flow_run_id})
        self.client.set_terminated(run.info.run_id)

    def history(self) -> list[dict]:
        exp = self._call("find the alias history", self.client.get_experiment_by_name, HISTORY_EXPERIMENT)
        if exp is None:
            return []
        runs = self._call("read the alias history", self.client.search_runs, [exp.experiment_id],
                          f"tags.`{MODEL_TAG}` = '{self.model_name}'", order_by=["attributes.start_time ASC"],
                          max_results=10_000)
        return [{"time": r.info.start_time, "alias": r.data.tags[ALIAS_TAG], "from": r.data.tags[FROM_TAG],
                 "to": r.data.tags[TO_TAG], "reason": r.data.tags[REASON_TAG], "flow_run_id": r.data.tags[FLOW_RUN_TAG]}
                for r in runs]

    def versions(self) -> list[VersionInfo]:
        found = self._call(f"list the versions of {self.model_name}", self.client.search_model_versions,
                           f"name = '{self.model_name}'")
        by_version: dict[str, list[str]] = {}
        for alias, version in self.aliases().items():
            by_version.setdefault(version, []).append(alias)
        return sorted((self._info(mv, sorted(by_version.get(str(mv.version), []))) for mv in found),
                      key=lambda v: int(v.version))

    def find_version(self, tag: str, value: str) -> VersionInfo | None:
        matches = [v for v in self.versions() if v.tags.get(tag) == value]
        return matches[-1] if matches else None

    def load_model(self, version: VersionInfo):
        import mlflow.sklearn

        with self._artifacts("read"):
            return mlflow.sklearn.load_model(f"models:/{self.model_name}/{version.version}")

    def load_reference(self, version: VersionInfo) -> pd.DataFrame | None:
        import mlflow.artifacts

        # Listing first: a version logged without a reference has none, but a store that fails
        # must say so (MLflow's download wraps S3 errors without their cause).
        with self._artifacts("read"):
            listed = [a.path for a in self.client.list_artifacts(version.run_id, "reference")]
        if "reference/reference.parquet" not in listed:
            return None
        with self._artifacts("read"):
            local = mlflow.artifacts.download_artifacts(
                run_id=version.run_id, artifact_path="reference/reference.parquet", tracking_uri=self.tracking_uri)
        return pd.read_parquet(local)

    def delete_version(self, version: str) -> None:
        """Undo a registration: the version goes, and with it any alias pointing at it."""
        self.client.delete_model_version(self.model_name, version)

    def register(self, model_uri: str, run_id: str, tags: dict[str, str], alias: str,
                 description: str, point: Point | None = None) -> VersionInfo:
        """Create a version and point `alias` at it (at once, or by the caller's rule `point`: training
        moves @challenger under the rollout lease), or leave the registry as it was."""
        client, model = self.client, self._model()
        if model is None:  # absent, not unreachable: an unreachable registry raised
            client.create_registered_model(self.model_name, description=self.description)
        elif self.description and model.description != self.description:  # the params changed it
            self._call(f"describe {self.model_name}", client.update_registered_model, self.model_name,
                       description=self.description)
        before = self.aliases().get(alias)
        from mlflow.store.artifact.utils.models import _parse_model_id_if_present

        # A tracking server refuses a `models:/m-...` source without the logged model's id.
        mv = client.create_model_version(self.model_name, model_uri, run_id=run_id, tags=tags,
                                         description=description, model_id=_parse_model_id_if_present(model_uri))
        reason, flow_run_id = f"registered by training: {description}", tags.get(FLOW_RUN_TAG, "-")
        try:
            if point is not None:
                point(self, str(mv.version), reason, flow_run_id)
            else:
                client.set_registered_model_alias(self.model_name, alias, mv.version)
                self.record_change(alias, before, str(mv.version), reason, flow_run_id)
        except Exception as err:
            client.delete_model_version(self.model_name, mv.version)
            if isinstance(err, RegistryError):  # e.g. RegistryUnreachable: keep its kind
                raise
            raise RegistryError(f"could not set @{alias} on {self.model_name} v{mv.version}: {err}") from err
        return self._info(client.get_model_version(self.model_name, mv.version))
