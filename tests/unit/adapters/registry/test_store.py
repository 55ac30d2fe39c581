"""The MLflow adapter tells "absent" from "unreachable", and model trust is a version tag.

Real MLflow stores: a SQLite file for the answers MLflow gives, and a tracking URI where nothing
listens for a registry that does not answer (the fault suite stops a real `mlflow server`)."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException, RestException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from driftline.adapters.registry import trust
from driftline.adapters.registry.faults import ATTEMPTS, is_absent, safe_uri
from driftline.adapters.registry.store import CHAMPION, MlflowStore, RegistryError, RegistryUnreachable
from tests.integration.conftest import free_port
from tests.mlflow_db import empty_store


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> MlflowStore:
    root = tmp_path_factory.mktemp("mlflow")
    return MlflowStore(empty_store(root / "mlflow.db"), str(root / "artifacts"), "unit", "unit-model").start()


@pytest.fixture
def silent(monkeypatch) -> MlflowStore:
    """A store whose tracking server does not answer (nothing listens on the port)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    store = MlflowStore(f"http://127.0.0.1:{free_port()}", "/tmp/unused", "unit", "unit-model")
    with pytest.raises(RegistryUnreachable):
        store.start()  # builds the client, then cannot read the experiment
    return store


def _version(store: MlflowStore, tags: dict[str, str]) -> str:
    run_id = store.start_run("unit", tags={})
    return store.register(f"runs:/{run_id}/model", run_id, tags, "candidate", "unit").version


def test_a_model_or_alias_that_does_not_exist_is_absent(store):
    other = MlflowStore(store.tracking_uri, store.artifact_location, "unit", "no-such-model").start()
    assert other.aliases() == {} and other.model_tags() == {} and other.version_by_alias(CHAMPION) is None
    assert other.version("1") is None
    _version(store, {})
    assert store.version_by_alias(CHAMPION) is None  # the model exists, the alias does not
    assert store.aliases().get("candidate") is not None


def test_a_registry_that_does_not_answer_is_unreachable_never_absent(silent):
    for read in (silent.aliases, silent.model_tags, lambda: silent.version_by_alias(CHAMPION), silent.versions):
        with pytest.raises(RegistryUnreachable) as err:
            read()
        assert isinstance(err.value, RegistryError)
        message = str(err.value)
        assert silent.tracking_uri in message and "unreachable" in message
        assert f"failed {ATTEMPTS} times" in message and "Connection refused" in message


def test_registration_does_not_create_the_model_when_the_registry_is_silent(silent):
    with pytest.raises(RegistryUnreachable):
        silent.register("runs:/x/model", "x", {}, CHAMPION, "unit")


def test_absent_is_what_mlflow_says_for_a_missing_alias_or_model_and_nothing_else():
    # The REST store raises what the server answered; the SQLAlchemy store raises the same codes.
    assert is_absent(RestException({"error_code": "INVALID_PARAMETER_VALUE",
                                    "message": "Registered model alias champion not found."}))
    assert is_absent(MlflowException("Registered Model with name=x not found", error_code=RESOURCE_DOES_NOT_EXIST))
    assert not is_absent(RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad filter"}))
    assert not is_absent(RestException({"error_code": "TEMPORARILY_UNAVAILABLE",
                                        "message": "(sqlite3.OperationalError) database is locked"}))
    assert not is_absent(ConnectionError("refused"))


def test_the_tracking_uri_is_named_without_its_password():
    assert safe_uri("postgresql://ml:s3cret@db:5432/mlflow") == "postgresql://ml:***@db:5432/mlflow"
    assert safe_uri("http://127.0.0.1:5001") == "http://127.0.0.1:5001"


def test_an_unreachable_registry_never_shows_its_password_not_even_in_a_traceback(monkeypatch):
    """MLflow's own error quotes the URL it called, credentials and all."""
    import traceback

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    store = MlflowStore(f"http://ops:s3cret@127.0.0.1:{free_port()}", "/tmp/unused", "unit", "unit-model")
    with pytest.raises(RegistryUnreachable) as err:
        store.start()
    assert "http://ops:***@127.0.0.1:" in str(err.value) and "Connection refused" in str(err.value)
    assert "s3cret" not in "".join(traceback.format_exception(err.value))
    assert "s3cret" in str(err.value.cause)  # kept for code that inspects it, never printed


def test_the_experiment_opens_on_its_runs_in_the_mlflow_ui(tmp_path):
    """MLflow 3 opens an experiment of no stated kind on its GenAI overview; an experiment made
    before driftline stated it gets it on the next start."""
    from driftline.adapters.registry.runs import KIND_TAG

    uri = empty_store(tmp_path / "mlflow.db")
    fresh = MlflowStore(uri, str(tmp_path / "artifacts"), "fresh", "m").start()
    assert fresh.client.get_experiment(fresh.experiment_id).tags[KIND_TAG] == "custom_model_development"
    old_id = fresh.client.create_experiment("made-by-hand", artifact_location=str(tmp_path / "old"))
    assert KIND_TAG not in fresh.client.get_experiment(old_id).tags
    MlflowStore(uri, str(tmp_path / "old"), "made-by-hand", "m").start()
    assert fresh.client.get_experiment(old_id).tags[KIND_TAG] == "custom_model_development"


def test_a_version_whose_gates_did_not_pass_is_refused_unless_forced(store):
    gated = _version(store, {trust.GATES_TAG: trust.PASSED})
    assert trust.admit(store, gated, force=False) == ""
    ungated = _version(store, {})
    with pytest.raises(trust.Untrusted) as refused:
        trust.admit(store, ungated, force=False)
    assert "--force" in str(refused.value) and "no such tag" in str(refused.value)
    assert trust.FORCED_TAG not in store.version(ungated).tags
    assert "forced" in trust.admit(store, ungated, force=True, flow_run_id="run-1")
    assert "flow run run-1" in store.version(ungated).tags[trust.FORCED_TAG]
    with pytest.raises(ValueError, match="no version 99"):
        trust.admit(store, "99", force=True)


def test_the_registered_model_is_described_by_registry_description(tmp_path, params):
    """The MLflow UI shows the params' registry.description on the model, not a placeholder; a
    model registered before (\"Managed by driftline.\") takes it at its next registration."""
    from driftline import services
    from driftline.config import Settings

    described = services.mlflow_store(Settings(project_dir=tmp_path), params).start()
    assert described.description == params.registry.description != ""
    run_id = described.start_run("unit", tags={})
    described.register(f"runs:/{run_id}/model", run_id, {}, CHAMPION, "unit")
    assert described.client.get_registered_model(described.model_name).description == params.registry.description

    older = MlflowStore(described.tracking_uri, described.artifact_location, described.experiment, "older").start()
    older.client.create_registered_model("older", description="Managed by driftline.")
    newer = MlflowStore(older.tracking_uri, older.artifact_location, older.experiment, "older", "Scores loans.")
    newer.start().register(f"runs:/{run_id}/model", run_id, {}, CHAMPION, "unit")
    assert newer.client.get_registered_model("older").description == "Scores loans."
