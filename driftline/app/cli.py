"""The `driftline` command: setup, training, serving, monitoring, the local stack and the demo
here; the registered model and its rollouts in cli_rollout.py; the local stack and the demo in
cli_stack.py; what they share in cli_common.py."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from driftline.app.cli_common import (
    ParamsOpt,
    fail,
    flow_settings,
    prefect_env,
    print_where,
    project_or_exit,
    registry_answers,
)
from driftline.app.cli_rollout import card, deploy, history, rollback, status
from driftline.app.cli_stack import demo, down, up
from driftline.config import ConfigError, params_schema

# Markdown help: a docstring's lines are joined into sentences (the default "rich" mode keeps each
# line break, so the help boxes broke mid-sentence), and `code` shows as code.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode="markdown",
                  help="Continuous training and delivery for tabular ML models.")

@app.callback()
def _everywhere() -> None:
    from driftline.adapters.s3 import use_safe_checksums

    use_safe_checksums()  # before any S3 client exists, DVC's included
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A shell's background job starts with SIGINT ignored and Python keeps that: Ctrl-C, or a
        # supervisor's SIGINT, would then not stop a deploy (seen: a test's SIGINT left one running).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars for 1 file: noise
    # State, logs, pickled models and secrets are the user's alone: with the usual umask (022)
    # every local user could read the prediction log, load a model's pickle or the request-id
    # key. Inherited by every process a stack starts (servers, deployments, workers, flow runs).
    os.umask(0o077)


def init(
    params: ParamsOpt = Path("params.yaml"),
    remote: Annotated[str | None, typer.Option(help="An S3 DVC remote, s3://BUCKET/PREFIX.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="For S3-compatible stores (MinIO, Ceph, R2).")] = None,
    create_bucket: Annotated[bool, typer.Option(help="Create the bucket if it does not exist.")] = False,
) -> None:
    """Set up DVC and the demo data; safe to run again.

    DVC gets a local remote, or S3 with --remote. The demo data is pulled, or regenerated and
    pushed when the local remote is empty. S3 credentials come from the environment or the AWS
    files only.
    """
    from driftline.adapters.dvc_data import DataError
    from driftline.adapters.s3 import S3Error, S3Location
    from driftline.app.project import init_project

    with project_or_exit(params) as project:
        settings = project.settings
        try:
            location = S3Location.parse(remote, endpoint_url) if remote else None
        except ValueError as err:
            fail(f"--remote: {err}", 2)
        try:
            report = init_project(settings, s3_remote=location, create_bucket=create_bucket)
        except (DataError, S3Error) as err:
            fail(f"init failed: {err}", 3)
        for step in report.steps:
            typer.echo(f"- {step}")
        # Creating the tracking database once here keeps its migrations out of the first training run.
        project.services  # noqa: B018 - started for that, and stopped as the project closes
        typer.echo(f"- MLflow tracking store ready: {settings.mlflow_uri}")


def train(
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE.")] = None,
    reason: Annotated[str, typer.Option(help="Why this run happens (tagged in MLflow).")] = "manual",
    search: Annotated[bool | None, typer.Option(
        "--search/--no-search", help="Run training.search's hyperparameter search, or skip it this once "
        "(default: as training.search.enabled says).")] = None,
    dask_address: Annotated[str | None, typer.Option(
        help="An existing Dask scheduler (tcp://host:8786) for the search's trials "
        "(default: DRIFTLINE_DASK_ADDRESS, else a temporary local cluster).")] = None,
) -> None:
    """Run the training pipeline: pull, validate, train, evaluate, compare, register.

    Exit codes: 0 a model was registered (or nothing changed); 1 data validation or a gate
    failed; 2 a bad config; 3 the data cannot be pulled, the artifact store (S3) fails or the
    model registry does not answer; 4 anything else.
    """
    rel = params
    with project_or_exit(rel, set_) as project:  # fail before any work (the flow logs any default it chose)
        settings, p = project.settings, project.params
    if search and p.training.search is None:
        fail("training.search: --search needs a training.search section (the space to search) in the params", 2)
    prefect_env()
    from driftline.adapters.dvc_data import DataError
    from driftline.adapters.registry.store import RegistryUnreachable
    from driftline.adapters.s3 import S3Error
    from driftline.errors import PipelineFailure
    from flows.training import training_pipeline

    try:
        # A dict: a run that ends Cancelled (a drift event already answered) raises when called.
        with flow_settings():
            result = cast("dict[str, Any]", training_pipeline(
                params_path=str(rel), overrides=set_ or [], reason=reason, project_dir=str(settings.root),
                search=search if p.training.search else None, dask_address=dask_address))
    except PipelineFailure as err:
        fail(f"training stopped at {err.stage}: {err.paragraph}", 1)
    except RegistryUnreachable as err:
        fail(f"training stopped: {err}. Nothing was registered and no alias moved; retry when the registry "
              "answers.", 3)
    except (DataError, S3Error, ConfigError) as err:
        fail(f"training stopped: {err}", 2 if isinstance(err, ConfigError) else 3)
    except Exception as err:  # noqa: BLE001 - anything else: say what, not a traceback
        fail(f"training failed unexpectedly: {type(err).__name__}: {err} "
              "(the Prefect flow run log has the traceback)", 4)
    if result.get("gates"):
        typer.echo(_gate_lines(result["gates"]))
    typer.secho(result["message"], fg=typer.colors.GREEN)
    print_where(settings, result)


def _gate_lines(gates: list[dict]) -> str:
    width = max(len(g["name"]) for g in gates)
    from driftline.core.gates import fmt

    lines = [f"{'gate':<{width}}  {'value':>8}  {'champion':>8}  {'threshold':<14} result"]
    for g in gates:
        lines.append(f"{g['name']:<{width}}  {fmt(g['challenger']):>8}  {fmt(g['champion']):>8}  "
                     f"{g['threshold']:<14} {'pass' if g['passed'] else 'FAIL'}")
    return "\n".join(lines)


def serve(params: ParamsOpt = Path("params.yaml"),
          host: Annotated[str | None, typer.Option(help="Listen address; default DRIFTLINE_SERVE_HOST, "
                                                   "else 127.0.0.1.")] = None,
          port: Annotated[int | None, typer.Option(min=1, max=65535, help="Listen port; default "
                                                   "DRIFTLINE_SERVE_PORT, else 8080.")] = None,
          role: Annotated[str | None, typer.Option(help="production, or staging (serves @challenger alone); "
                                                   "default DRIFTLINE_SERVE_ROLE, else production.")] = None,
          ) -> None:
    """Serve @champion, and @challenger during a rollout, over HTTP.

    Its settings come from the `DRIFTLINE_SERVE_*` environment variables; --host, --port and
    --role override theirs.
    """
    from driftline.serving.server import exposed, run

    if role not in (None, "production", "staging"):
        fail(f"--role: {role!r} is not one of production, staging", 2)
    # The models carry their own code (custom features, a factory's classes): the server needs none
    # of the project's modules, so an image without them serves.
    with project_or_exit(params, read_code=False) as project:
        given = {"host": host, "port": port, "role": role}
        cfg = project.settings.serve.model_copy(update={k: v for k, v in given.items() if v is not None})
        if reason := exposed(cfg):
            fail(reason, 2)
        typer.echo(f"serving {project.params.registry.model_name} on http://{cfg.host}:{cfg.port} "
                   f"(POST /predict, /feedback; GET /health, /ready, /models, /metrics)")
        run(project, cfg)


def monitor(
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE.")] = None,
    window_hours: Annotated[float | None, typer.Option(help="Default: monitoring.window_hours.")] = None,
    last_rows: Annotated[int | None, typer.Option(help="Judge only the window's newest N rows.")] = None,
) -> None:
    """Judge live traffic against the champion's training reference.

    On real drift it emits `driftline.drift.detected`, and the retrain-on-drift deployment
    retrains. Exit 0 whatever the verdict.
    """
    with project_or_exit(params, set_) as project:
        settings = project.settings
    if not os.environ.get("PREFECT_API_URL"):
        typer.secho("PREFECT_API_URL is not set: this check runs on a temporary Prefect server, where a drift "
                    "event reaches no trigger (nothing retrains). Point it at `driftline up`'s server "
                    "(http://127.0.0.1:4200/api) or your team's.", fg=typer.colors.YELLOW, err=True)
    prefect_env()
    from flows.monitor import drift_monitor

    with registry_answers("monitor"), flow_settings():
        result = drift_monitor(window_hours=window_hours, last_rows=last_rows, params_path=str(params),
                               overrides=set_ or [], project_dir=str(settings.root))
    typer.secho(f"[{result['status']}] {result['message']}",
                fg=typer.colors.YELLOW if result["status"] == "drift" else typer.colors.GREEN)
    if result.get("report_url"):
        typer.echo(f"drift report: {result['report_url']}")


def config(
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON schema of params.yaml.")] = False,
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE, as train takes it.")] = None,
) -> None:
    """Check a params file (with any overrides), or print the JSON schema of params files."""
    if schema:
        typer.echo(json.dumps(params_schema(), indent=2))
        return
    with project_or_exit(params, set_) as project:
        p = project.params
    typer.echo(f"{params}: valid ({p.data.task}, {len(p.data.features)} features, "
               f"{p.training.estimator.kind}, model {p.registry.model_name})")
    for line in p.defaults_chosen():
        typer.echo(line)


# In --help's order.
for command in (init, train, status, card, deploy, rollback, history, serve, monitor, up, down, demo, config):
    app.command()(command)


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
