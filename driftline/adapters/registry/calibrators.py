"""A version's calibrator, kept as artifacts of its training run beside the model, never in it:
`calibration/calibrator.json` (and, for a regression model, `calibration/loss.pkl`). The model
server loads only the model; the drift monitor reads these to estimate performance."""

from __future__ import annotations

import tempfile
from pathlib import Path

from driftline.adapters.registry.store import MlflowStore, VersionInfo
from driftline.core.calibration import Calibrator, from_json

FOLDER = "calibration"
JSON, LOSS = f"{FOLDER}/calibrator.json", f"{FOLDER}/loss.pkl"


def log(store: MlflowStore, run_id: str, cal: Calibrator) -> None:
    store.log_text(run_id, cal.to_json(), JSON)
    loss = cal.loss_bytes()
    if loss is not None:
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "loss.pkl").write_bytes(loss)
            store.client.log_artifact(run_id, str(Path(tmp) / "loss.pkl"), FOLDER)


def load(store: MlflowStore, version: VersionInfo) -> Calibrator | None:
    """The version's calibrator; None when it was registered without one (before calibrators)."""
    import mlflow.artifacts

    listed = {a.path for a in store.client.list_artifacts(version.run_id, FOLDER)}
    if JSON not in listed:
        return None

    def read(path: str) -> bytes:
        local = mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=path,
                                                    tracking_uri=store.tracking_uri)
        return Path(local).read_bytes()

    return from_json(read(JSON).decode(), read(LOSS) if LOSS in listed else None)
