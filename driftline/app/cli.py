"""The `driftline` command."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from driftline.config import STRATEGIES, ConfigError, Settings, load_params, params_schema

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Continuous training and delivery for tabular ML models.")

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="Params file.")]


@app.callback()
def _everywhere() -> None:
    from driftline.adapters.s3 import use_safe_checksums

    use_safe_checksums()  # before any S3 client exists, DVC's included
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # progress bars for 1 file: noise

PREFECT_DEFAULTS = {
    # The ephemeral server needs ~20 s on a 2-core machine; Prefect's default wait is 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def _prefect_env() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


def _params(settings: Settings, path: Path, overrides: list[str] | None = None):
    """The params file, or exit 2 with the message naming the key and the reason."""
    try:
        return load_params(settings.root / path, overrides or [])
    except ConfigError as err:
        _fail(str(err), 2)


def _fail(message: str, code: int) -> None:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@app.command()
def init(
    params: ParamsOpt = Path("params.yaml"),
    remote: Annotated[str | None, typer.Option(help="An S3 DVC remote, s3://BUCKET/PREFIX.")] = None,
    endpoint_url: Annotated[str | None, typer.Option(help="For S3-compatible stores (MinIO, Ceph, R2).")] = None,
    create_bucket: Annotated[bool, typer.Option(help="Create the bucket if it does not exist.")] = False,
) -> None:
    """Set up DVC (a local remote, or S3 with --remote), the demo data pulled or regenerated and
    pushed. Idempotent. S3 credentials come from the environment or the AWS files only."""
    from driftline import services
    from driftline.adapters.dvc_data import DataError
    from driftline.adapters.s3 import S3Error, S3Location
    from driftline.app.project import init_project

    settings = Settings()
    p = _params(settings, params)
    try:
        location = S3Location.parse(remote, endpoint_url) if remote else None
    except ValueError as err:
        _fail(f"--remote: {err}", 2)
    try:
        report = init_project(settings, s3_remote=location, create_bucket=create_bucket)
    except (DataError, S3Error) as err:
        _fail(f"init failed: {err}", 3)
    for step in report.steps:
        typer.echo(f"- {step}")
    # Creating the tracking database once here keeps its migrations out of the first training run.
    services.mlflow_store(settings, p).start()
    typer.echo(f"- MLflow tracking store ready: {settings.mlflow_uri}")


@app.command()
def train(
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE.")] = None,
    reason: Annotated[str, typer.Option(help="Why this run happens (tagged in MLflow).")] = "manual",
) -> None:
    """Run the training pipeline. Exit 0 when a model is registered (or unchanged), 1 when data
    validation or a gate fails, 2 on a bad config, 3 when the data cannot be pulled, the artifact
    store (S3) fails or the model registry does not answer, 4 otherwise."""
    settings = Settings()
    rel = params
    _params(settings, rel, set_)  # fail before any work
    _prefect_env()
    from driftline.adapters.dvc_data import DataError
    from driftline.adapters.s3 import S3Error
    from driftline.adapters.tracking import RegistryUnreachable
    from driftline.errors import PipelineFailure
    from flows.training import training_pipeline

    try:
        result = training_pipeline(params_path=str(rel), overrides=set_ or [], reason=reason,
                                   project_dir=str(settings.root))
    except PipelineFailure as err:
        _fail(f"training stopped at {err.stage}: {err.paragraph}", 1)
    except RegistryUnreachable as err:
        _fail(f"training stopped: {err}. Nothing was registered and no alias moved; retry when the registry "
              "answers.", 3)
    except (DataError, S3Error, ConfigError) as err:
        _fail(f"training stopped: {err}", 2 if isinstance(err, ConfigError) else 3)
    except Exception as err:  # noqa: BLE001 - anything else: say what, not a traceback
        _fail(f"training failed unexpectedly: {type(err).__name__}: {err} "
              "(the Prefect flow run log has the traceback)", 4)
    if result.get("gates"):
        typer.echo(_gate_lines(result["gates"]))
    typer.secho(result["message"], fg=typer.colors.GREEN)
    _print_where(settings)


def _gate_lines(gates: list[dict]) -> str:
    width = max(len(g["name"]) for g in gates)
    from driftline.core.gates import fmt

    lines = [f"{'gate':<{width}}  {'value':>8}  {'champion':>8}  {'threshold':<14} result"]
    for g in gates:
        lines.append(f"{g['name']:<{width}}  {fmt(g['challenger']):>8}  {fmt(g['champion']):>8}  "
                     f"{g['threshold']:<14} {'pass' if g['passed'] else 'FAIL'}")
    return "\n".join(lines)


def _print_where(settings: Settings) -> None:
    typer.echo(f"MLflow UI:  {settings.mlflow_ui_url}  (`driftline up` or `make ui` starts it)")
    typer.echo(f"Prefect UI: {settings.prefect_ui_url}  (flow runs and the training report artifact)")


@app.command()
def status(
    params: ParamsOpt = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the registered model versions, their aliases and holdout metrics, and the rollout in
    progress (who holds the model's rollout lease, since when, until when)."""
    from driftline import services
    from driftline.adapters import rollout_state

    settings = Settings()
    p = _params(settings, params)
    store = services.mlflow_store(settings, p).start()
    versions = []
    for v in store.versions():
        metrics = {k.removeprefix("holdout_"): round(val, 4) for k, val in store.run_metrics(v.run_id).items()
                   if k.startswith("holdout_")}
        versions.append({"version": v.version, "aliases": v.aliases, "run_id": v.run_id,
                         "dvc_md5": v.tags.get("driftline.dvc_md5"),
                         "git_commit": v.tags.get("driftline.git_commit"),
                         "reason": v.tags.get("driftline.reason"), "metrics": metrics,
                         "awaiting_rollout": v.tags.get(rollout_state.AWAITING_TAG) == "true"})
    doc = {"model_name": p.registry.model_name, "tracking_uri": settings.mlflow_uri, "versions": versions,
           "rollout": rollout_state.describe(store)}
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"model {p.registry.model_name} ({settings.mlflow_uri})")
    if not versions:
        typer.echo("  no versions registered yet: run `driftline train`")
    for v in versions:
        aliases = " ".join(f"@{a}" for a in v["aliases"]) or "-"
        metrics = ", ".join(f"{k}={val}" for k, val in v["metrics"].items())
        waiting = "  [waits for the rollout to end]" if v["awaiting_rollout"] else ""
        typer.echo(f"  v{v['version']:<3} {aliases:<24} {metrics}  (data {v['dvc_md5']}, {v['reason']}){waiting}")
    typer.echo(rollout_state.status_line(doc["rollout"]))
    _print_where(settings)



@app.command()
def deploy(
    version: Annotated[str | None, typer.Option(help="Version to deploy; default @challenger.")] = None,
    strategy: Annotated[str | None, typer.Option(help=" | ".join(STRATEGIES))] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE.")] = None,
    force: Annotated[bool, typer.Option(help="Deploy a version whose gates did not pass (driftline.gates tag); "
                                             "recorded on the version and in the history.")] = False,
) -> None:
    """Roll a challenger out against live traffic; promote it, or roll it back automatically.
    Exit 0 promoted (or already champion), 1 rolled back, 2 nothing to deploy, a bad option or a
    version whose gates did not pass (without --force), 3 when the model registry does not answer,
    4 when another rollout of the model holds its rollout lease (the message names it)."""
    settings = Settings()
    _params(settings, params, set_)
    if strategy not in (None, *STRATEGIES):
        _fail(f"--strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}", 2)
    _prefect_env()
    from driftline.adapters.lease import LeaseHeld
    from driftline.adapters.tracking import RegistryUnreachable
    from flows.deploy import RolledBack, deploy_model

    try:
        result = deploy_model(version=version, strategy=strategy, params_path=str(params),
                              overrides=set_ or [], project_dir=str(settings.root), force=force)
    except RolledBack as err:
        _fail(str(err), 1)
    except ValueError as err:
        _fail(str(err), 2)
    except RegistryUnreachable as err:
        _fail(f"deploy stopped: {err}", 3)
    except LeaseHeld as err:  # another rollout of this model is in progress
        _fail(f"deploy stopped: {err}", 4)
    typer.secho(result["message"], fg=typer.colors.GREEN)


@app.command()
def rollback(params: ParamsOpt = Path("params.yaml"),
             reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "manual rollback") -> None:
    """Restore @previous as @champion, and say what changed. Exit 2 when there is no @previous,
    4 when a rollout in progress holds the model (the message names it)."""
    settings = Settings()
    _params(settings, params)  # a bad config fails here, naming the key, not inside the flow
    _prefect_env()
    from driftline.adapters.lease import LeaseHeld
    from flows.deploy import rollback as rollback_flow

    try:
        result = rollback_flow(params_path=str(params), project_dir=str(settings.root), reason=reason)
    except ValueError as err:
        _fail(str(err), 2)
    except LeaseHeld as err:
        _fail(f"rollback stopped: {err}", 4)
    typer.secho(result["message"], fg=typer.colors.GREEN)


@app.command()
def history(params: ParamsOpt = Path("params.yaml"),
            as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every alias change ever made: when, from which version to which, why, by which flow run."""
    from datetime import UTC, datetime

    from driftline import services

    settings = Settings()
    p = _params(settings, params)
    rows = services.mlflow_store(settings, p).start().history()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        when = datetime.fromtimestamp(r["time"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{when}  @{r['alias']:<10} {r['from']:>4} -> {r['to']:<4}  {r['reason']}  "
                   f"(flow run {r['flow_run_id']})")


@app.command()
def serve(params: ParamsOpt = Path("params.yaml")) -> None:
    """Serve @champion (and @challenger during a rollout) over HTTP. Settings: DRIFTLINE_SERVE_*."""
    from driftline.serving.server import run

    settings = Settings()
    p = _params(settings, params)
    cfg = settings.serve
    typer.echo(f"serving {p.registry.model_name} on http://{cfg.host}:{cfg.port} "
               f"(POST /predict, /feedback; GET /health, /ready, /models, /metrics)")
    run(settings, p, cfg)


@app.command()
def monitor(
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE.")] = None,
    window_hours: Annotated[float | None, typer.Option(help="Default: monitoring.window_hours.")] = None,
    last_rows: Annotated[int | None, typer.Option(help="Judge only the window's newest N rows.")] = None,
) -> None:
    """Judge live traffic against the champion's training reference; on real drift, emit
    driftline.drift.detected (the retrain-on-drift deployment retrains). Exit 0 in every verdict."""
    settings = Settings()
    _params(settings, params, set_)
    if not os.environ.get("PREFECT_API_URL"):
        typer.secho("PREFECT_API_URL is not set: this check runs on a temporary Prefect server, where a drift "
                    "event reaches no trigger (nothing retrains). Point it at `driftline up`'s server "
                    "(http://127.0.0.1:4200/api) or your team's.", fg=typer.colors.YELLOW, err=True)
    _prefect_env()
    from flows.monitor import drift_monitor

    result = drift_monitor(window_hours=window_hours, last_rows=last_rows, params_path=str(params),
                           overrides=set_ or [], project_dir=str(settings.root))
    typer.secho(f"[{result['status']}] {result['message']}",
                fg=typer.colors.YELLOW if result["status"] == "drift" else typer.colors.GREEN)
    if result.get("report_url"):
        typer.echo(f"Evidently report: {result['report_url']}")


@app.command()
def up(params: ParamsOpt = Path("params.yaml"),
       set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE in every deployment.")] = None,
       mlflow_ui: Annotated[bool, typer.Option(help="Start the MLflow UI.")] = True) -> None:
    """The local stack: Prefect server + UI, MLflow UI, the deployments (served: schedules and
    triggers live) and the model server. Ctrl-C stops all of it."""
    from driftline.app.stack import Stack, StackError, interruptible

    interruptible()
    settings = Settings()
    _params(settings, params, set_)
    _prefect_env()  # for the server it starts and every process after it
    stack = Stack(settings, params, set_ or [], mlflow_ui, typer.echo)
    try:
        stack.start()
        typer.echo(f"Logs: {settings.state / 'logs'}. Ctrl-C stops everything.")
        stack.wait()
    except KeyboardInterrupt:
        typer.echo("stopping")
    except StackError as err:
        _fail(f"the stack stopped: {err}", 1)
    finally:
        stack.stop()


@app.command()
def demo(params: ParamsOpt = Path("params.yaml"),
         keep_serving: Annotated[bool, typer.Option(help="Leave the stack running at the end.")] = True,
         mlflow_ui: Annotated[bool, typer.Option(help="Start the MLflow UI.")] = True,
         ) -> None:
    """The whole story on the demo data: champion, live traffic, drift, retraining started by the
    drift event, a canary that promotes it, a bad challenger rolled back."""
    from driftline.app import demo as story
    from driftline.app.stack import StackError, interruptible

    interruptible()
    settings = Settings()
    if settings.state_dir is None:
        # Its own sandbox, new each time: a second demo starts from the same story, not from the
        # first one's champion (trained on the drifted population, so "normal" traffic drifts).
        sandbox = settings.state / "demo"
        shutil.rmtree(sandbox, ignore_errors=True)
        os.environ["DRIFTLINE_STATE_DIR"] = str(sandbox)
        settings = Settings()
        typer.echo(f"The demo's registry, logs and model server state: {sandbox} (new for each demo; "
                   "`DRIFTLINE_STATE_DIR=.driftline/demo uv run driftline status` reads it afterwards)")
    p = _params(settings, params)
    _prefect_env()
    try:
        story.run(settings, p, params, typer.echo, keep_serving, mlflow_ui)
    except (story.DemoFailed, StackError, TimeoutError) as err:
        _fail(f"demo stopped: {err}", 1)


@app.command()
def config(
    schema: Annotated[bool, typer.Option("--schema", help="Print the JSON schema of params.yaml.")] = False,
    params: ParamsOpt = Path("params.yaml"),
) -> None:
    """Check a params file, or print the JSON schema of params files."""
    if schema:
        typer.echo(json.dumps(params_schema(), indent=2))
        return
    p = _params(Settings(), params)
    typer.echo(f"{params}: valid ({p.data.task}, {len(p.data.features)} features, "
               f"{p.training.estimator.kind}, model {p.registry.model_name})")


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":  # pragma: no cover
    main()
