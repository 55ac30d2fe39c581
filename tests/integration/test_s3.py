"""S3 through a real S3 API on loopback: moto in server mode on a free port (DVC's async
clients go through it like any other endpoint)."""

from __future__ import annotations

import os
import shutil
import socket
import time

import pytest
from typer.testing import CliRunner

from driftline.adapters import dvc_data, s3
from driftline.adapters.registry.store import MlflowStore
from driftline.adapters.s3 import S3Error, S3Location
from driftline.app.cli import app
from tests.integration.conftest import free_port, git, make_project


@pytest.fixture(scope="module")
def endpoint():
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update({"AWS_ACCESS_KEY_ID": "driftline-test", "AWS_SECRET_ACCESS_KEY": "not-a-secret",
                       "AWS_DEFAULT_REGION": "us-east-1"})
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _data_remote(tmp_path) -> str:
    """Each test its own DVC remote in the shared bucket: the corrupt-copy test overwrites an
    object, and DVC's objects are content-addressed, so a shared prefix would hand its corrupt
    bytes to every test pulling after it."""
    return f"s3://team-data/{tmp_path.name}/dvc"


def _init(project, monkeypatch, *args: str):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    monkeypatch.chdir(project.root)
    return CliRunner().invoke(app, ["init", *args])


def test_init_on_s3_creates_the_bucket_pushes_and_a_fresh_clone_pulls_the_same_bytes(tmp_path, endpoint,
                                                                                     monkeypatch):
    project = make_project(tmp_path / "proj")
    remote = "s3://first-push/dvc"  # a bucket no other test uses, so this init is the one to create it
    result = _init(project, monkeypatch, "--remote", remote, "--endpoint-url", endpoint, "--create-bucket")
    assert result.exit_code == 0, result.output
    assert "created bucket 'first-push'" in result.output
    assert f"DVC remote 'storage' -> {remote}" in result.output
    location = S3Location.parse(remote, endpoint)
    assert s3.count_objects(location) >= 1
    config = (project.root / ".dvc" / "config").read_text()
    assert remote in config and endpoint in config
    assert "not-a-secret" not in config and "driftline-test" not in config  # no credential is ever written
    # A fresh clone of the repository: no cache, no data, only what git has; the pull comes from S3.
    git(project.root, "add", "-A")
    git(project.root, "commit", "-qm", "s3 remote")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(project.root), str(clone))
    (clone / ".dvc" / "config.local").unlink(missing_ok=True)
    dvc_file = clone / "data.dvc"
    dvc_data.pull(clone, dvc_file)
    assert dvc_data.tracked_md5(dvc_file) == dvc_data.tracked_md5(project.root / "data.dvc")
    assert (clone / "data" / "loans.parquet").read_bytes() == (project.root / "data" / "loans.parquet").read_bytes()
    shutil.rmtree(clone)


def test_a_missing_bucket_is_named_and_nothing_is_configured(tmp_path, endpoint, monkeypatch):
    project = make_project(tmp_path / "proj")
    before = (project.root / ".dvc" / "config").read_text()
    result = _init(project, monkeypatch, "--remote", "s3://nobody-made-this/x", "--endpoint-url", endpoint)
    assert result.exit_code == 3
    assert f"bucket 'nobody-made-this' at {endpoint}" in result.output and "does not exist" in result.output
    assert (project.root / ".dvc" / "config").read_text() == before


def test_an_unreachable_endpoint_fails_clearly_after_bounded_retries(endpoint):
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(S3Error) as err:
        s3.check_bucket(S3Location.parse("s3://anything/x", dead))
    assert err.value.transient and dead in str(err.value) and "does not answer" in str(err.value)
    assert "not-a-secret" not in str(err.value)


def _keys(location: S3Location) -> list[str]:
    pages = s3.client(location).get_paginator("list_objects_v2").paginate(Bucket=location.bucket,
                                                                           Prefix=location.prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture
def on_s3(tmp_path, endpoint, monkeypatch):
    """A project whose DVC remote and MLflow artifacts are both on the S3 endpoint."""
    project = make_project(tmp_path / "proj")
    artifacts = S3Location.parse(f"s3://team-artifacts/{tmp_path.name}", endpoint)
    s3.check_bucket(artifacts, create=True)
    # Set before `init`, which creates the tracking store and its experiment.
    monkeypatch.setenv("DRIFTLINE_ARTIFACT_LOCATION", artifacts.url)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    assert _init(project, monkeypatch, "--remote", _data_remote(tmp_path), "--endpoint-url", endpoint,
                 "--create-bucket").exit_code == 0
    (project.root / ".dvc" / "config.local").unlink(missing_ok=True)
    # Nothing local: the data must come from S3.
    shutil.rmtree(project.root / ".dvc" / "cache", ignore_errors=True)
    shutil.rmtree(project.root / "data")
    return project, artifacts


def test_the_pipeline_runs_end_to_end_with_data_and_artifacts_on_s3(on_s3):
    project, artifacts = on_s3
    result = project.train()
    assert result["status"] == "registered" and result["version"] == "1"
    assert (project.root / "data" / "loans.parquet").exists()  # pulled from S3
    keys = _keys(artifacts)
    assert any(k.endswith("reference/reference.parquet") for k in keys)
    assert any(k.endswith("/MLmodel") for k in keys) and any(k.endswith("report.md") for k in keys), keys
    assert not list((project.root / ".driftline").glob("mlartifacts/**/MLmodel"))  # nothing written locally
    store = project.store()
    version = store.version_by_alias("champion")
    model, reference = store.load_model(version), store.load_reference(version)  # read back from S3
    assert len(reference) > 1000
    assert model.predict_proba(reference.drop(columns=["prediction", "defaulted"]).head(5)).shape == (5, 2)


def test_s3_stopped_mid_run_fails_clearly_and_leaves_the_registry_as_it_was(on_s3, monkeypatch):
    import threading

    from moto.server import ThreadedMotoServer

    project, _ = on_s3
    # The artifacts on a second S3 server, stopped once a training run is under way (after the
    # data was pulled and the champion loaded from it).
    port = free_port()
    artifacts_server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    artifacts_server.start()
    endpoint = f"http://127.0.0.1:{port}"
    moved = S3Location.parse("s3://moved-artifacts/mlflow", endpoint)
    s3.check_bucket(moved, create=True)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("DRIFTLINE_ARTIFACT_LOCATION", moved.url)
    moved_experiment = "registry.experiment=driftline-moved"  # an experiment keeps its first location
    assert project.train(moved_experiment)["version"] == "1"
    store = MlflowStore(project.settings.mlflow_uri, moved.url, "driftline-moved", "loan-default").start()
    before = ([v.version for v in store.versions()], store.aliases())
    runs = len(store.client.search_runs([store.experiment_id]))

    def stop_when_the_run_starts() -> None:
        while len(store.client.search_runs([store.experiment_id])) == runs:
            time.sleep(0.1)
        artifacts_server.stop()

    watcher = threading.Thread(target=stop_when_the_run_starts, daemon=True)
    watcher.start()
    with pytest.raises(S3Error) as err:
        project.train(moved_experiment, "training.seed=7")
    watcher.join(5)
    message = str(err.value)
    assert "bucket 'moved-artifacts'" in message and endpoint in message and "does not answer" in message
    assert "not-a-secret" not in message
    assert ([v.version for v in store.versions()], store.aliases()) == before  # nothing registered, no alias moved


def test_wrong_credentials_are_refused_with_a_clear_message(tmp_path, monkeypatch):
    import subprocess
    import sys

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},  # IAM auth on
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.3)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG1")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-do-not-print")
        project = make_project(tmp_path / "proj")
        before = (project.root / ".dvc" / "config").read_text()
        result = _init(project, monkeypatch, "--remote", "s3://team-data/dvc", "--endpoint-url", endpoint,
                       "--create-bucket")
        assert result.exit_code == 3, result.output
        assert "credentials were refused" in result.output and f"bucket 'team-data' at {endpoint}" in result.output
        assert "wrong-secret-do-not-print" not in result.output
        assert (project.root / ".dvc" / "config").read_text() == before
    finally:
        server.terminate()
        server.wait(10)


def test_the_prediction_log_lives_on_s3_and_the_monitor_reads_it_there(on_s3, endpoint, monkeypatch):
    from flows.monitor import drift_monitor
    from tests.integration.test_serving import log_drifted_traffic

    project, artifacts = on_s3
    project.train()
    logs = S3Location.parse("s3://team-logs/serving", endpoint)
    s3.check_bucket(logs, create=True)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # s3fs (the log) reads the standard variable
    monkeypatch.setenv("DRIFTLINE_SERVE_LOG_DIR", logs.url)
    log_drifted_traffic(project, logs.url, 800)
    assert any("/predictions/date=" in k for k in _keys(logs)) and any("/feedback/date=" in k for k in _keys(logs))
    assert not (project.root / ".driftline" / "predictions").exists()
    result = drift_monitor(project_dir=str(project.root), overrides=["monitoring.cooldown_hours=0"])
    assert result["status"] == "drift" and result["rows"] >= 700
    run_keys = [k for k in _keys(artifacts) if result["mlflow_run_id"] in k]
    assert any(k.endswith("drift/report.html") for k in run_keys)  # the report went to S3 too


def test_a_corrupt_copy_on_the_remote_stops_the_pipeline_before_training(on_s3, endpoint):
    project, _ = on_s3
    store = project.store()
    remote = S3Location.parse(_data_remote(project.root.parent), endpoint)
    listing = [k for k in _keys(remote) if not k.endswith(".dir")]
    assert len(listing) == 1
    s3.client(remote).put_object(Bucket=remote.bucket, Key=listing[0], Body=b"PAR1 not the data PAR1")
    with pytest.raises(dvc_data.DataError) as err:
        project.train()
    assert "md5" in str(err.value) and "corrupt" in str(err.value) and "data.dvc records" in str(err.value)
    assert store.versions() == [] and store.aliases() == {}
