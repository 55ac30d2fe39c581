"""The command line on a real project (git, DVC, MLflow on SQLite, the session's Prefect server):
each command the README lists, with the exit codes it documents."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.core import demo_data


def test_train_exit_codes_unchanged_validation_and_unreachable_data(project, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    runner = CliRunner()
    first = runner.invoke(app, ["train"])
    assert first.exit_code == 0 and "registered loan-default version 1 as @champion" in first.output, first.output
    # The links point at this run's and this version's own pages, not at the UIs' front pages.
    store = project.store()
    run_id = store.version("1").run_id
    assert f"MLflow run:    http://127.0.0.1:5000/#/experiments/{store.experiment_id}/runs/{run_id}" in first.output
    assert "Model version: http://127.0.0.1:5000/#/models/loan-default/versions/1" in first.output
    assert "Prefect run:   http://127.0.0.1:4200/runs/flow-run/" in first.output
    again = runner.invoke(app, ["train"])
    assert again.exit_code == 0 and "unchanged: data, params, code and dependencies match model version 1" in \
        again.output, again.output

    project.write_data(demo_data.generate(3000, 7).drop(columns=["credit_score"]))
    broken = runner.invoke(app, ["train"])
    assert broken.exit_code == 1, broken.output
    assert "training stopped at validation" in broken.output and "missing columns: credit_score" in broken.output

    # The data cannot be pulled: not in the workspace, the cache or the remote.
    (project.root / "data" / "loans.parquet").unlink()
    shutil.rmtree(project.root / ".dvc" / "cache")
    shutil.rmtree(project.root.parent / f"{project.root.name}-remote")
    gone = runner.invoke(app, ["train"])
    assert gone.exit_code == 3, gone.output
    assert "training stopped: dvc pull data.dvc failed" in gone.output


def test_deploy_rollback_history_monitor_and_status_commands(project, monkeypatch):
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    runner = CliRunner()
    assert runner.invoke(app, ["train", "--reason", "cli"]).exit_code == 0

    nothing = runner.invoke(app, ["deploy"])
    assert nothing.exit_code == 2 and "no @challenger" in nothing.output, nothing.output
    same = runner.invoke(app, ["deploy", "--version", "1"])
    assert same.exit_code == 0 and "version 1 is already @champion" in same.output, same.output
    wrong = runner.invoke(app, ["deploy", "--strategy", "big-bang"])
    assert wrong.exit_code == 2 and "--strategy: 'big-bang' is not one of canary, shadow, blue-green" in wrong.output

    no_previous = runner.invoke(app, ["rollback"])
    assert no_previous.exit_code == 2 and "has no @previous to roll back to" in no_previous.output

    history = runner.invoke(app, ["history", "--json"])
    rows = json.loads(history.output)
    assert [(r["alias"], r["from"], r["to"]) for r in rows] == [("champion", "-", "1")]
    assert rows[0]["reason"].startswith("registered by training: cli")
    plain = runner.invoke(app, ["history"])
    assert "@champion" in plain.output and "-> 1" in plain.output

    monitor = runner.invoke(app, ["monitor", "--last-rows", "100"])
    assert monitor.exit_code == 0, monitor.output
    assert "[too_little_data]" in monitor.output

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0 and "loan-default" in status.output and "champion" in status.output


def test_train_exit_4_says_what_failed_when_the_fault_is_unexpected(project, monkeypatch):
    """A fault none of the named exits covers (here the local artifact store is a regular file, so
    MLflow cannot create a directory in it): exit 4, one sentence naming the error, and nothing
    registered."""
    blocker = project.root.parent / "not-a-directory"
    blocker.write_text("a file where the artifact store should be\n")
    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    monkeypatch.setenv("DRIFTLINE_ARTIFACT_LOCATION", blocker.as_uri())
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 4, result.output
    # Prefect's own log prints the traceback above; the command's last word is one sentence.
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("training failed unexpectedly: ") and "not-a-directory" in last, last
    assert last.endswith("(the Prefect flow run log has the traceback)")
    store = project.store()
    assert store.versions() == [] and store.aliases() == {}


def test_registry_commands_exit_3_with_one_sentence_when_the_registry_does_not_answer(project, monkeypatch):
    """The registry is down (nothing listens at its address, and its URI carries a password): every
    command that reads or moves aliases exits 3, its last line one sentence naming the registry,
    and the password appears nowhere, not even in the traceback Prefect logs for a failed flow run."""
    from tests.integration.conftest import free_port

    monkeypatch.setenv("DRIFTLINE_PROJECT_DIR", str(project.root))
    monkeypatch.setenv("DRIFTLINE_TRACKING_URI", f"http://ops:s3cret@127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    runner = CliRunner()
    for command in (["status"], ["history"], ["monitor"], ["rollback"]):
        result = runner.invoke(app, command)
        said = result.output
        assert result.exit_code == 3, f"{command}: exit {result.exit_code}\n{said[-3000:]}"
        last = said.strip().splitlines()[-1]
        assert last.startswith(f"{command[0]} stopped: the model registry at http://ops:***@127.0.0.1:"), last
        assert "is unreachable" in last and last.endswith("Retry when the registry answers.")
        assert "s3cret" not in said
        if command[0] in ("status", "history"):  # no flow run: nothing logs a traceback
            assert "Traceback" not in said
