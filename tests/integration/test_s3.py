"""S3 through a real S3 API on loopback: moto in server mode on a free port (DVC's async
clients go through it like any other endpoint)."""

from __future__ import annotations

import os
import shutil

import pytest
from typer.testing import CliRunner

from driftline import dvc_data, s3
from driftline.cli import app
from driftline.s3 import S3Error, S3Location
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


def _init(project, monkeypatch, *args: str):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    monkeypatch.chdir(project.root)
    return CliRunner().invoke(app, ["init", *args])


def test_init_on_s3_creates_the_bucket_pushes_and_a_fresh_clone_pulls_the_same_bytes(tmp_path, endpoint,
                                                                                     monkeypatch):
    project = make_project(tmp_path / "proj")
    result = _init(project, monkeypatch, "--remote", "s3://team-data/dvc", "--endpoint-url", endpoint,
                   "--create-bucket")
    assert result.exit_code == 0, result.output
    assert "created bucket 'team-data'" in result.output
    assert "DVC remote 'storage' -> s3://team-data/dvc" in result.output
    location = S3Location.parse("s3://team-data/dvc", endpoint)
    assert s3.count_objects(location) >= 1
    config = (project.root / ".dvc" / "config").read_text()
    assert "s3://team-data/dvc" in config and endpoint in config
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
