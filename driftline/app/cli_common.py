"""What every `driftline` command shares: the params option, opening the project or exiting 2,
failing with a message and an exit code, the Prefect defaults and settings a command that runs
flows sets."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from driftline.config import ConfigError, Settings

if TYPE_CHECKING:
    from driftline.services import Project

ParamsOpt = Annotated[Path, typer.Option("--params", "-p", help="Params file.")]

PREFECT_DEFAULTS = {
    # The ephemeral server needs ~20 s on a 2-core machine; Prefect's default wait is 20 s.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def prefect_env() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


@contextmanager
def flow_settings() -> Iterator[None]:
    """Prefect's settings for a flow this process runs: no flow-run heartbeats unless they are
    configured (PREFECT_FLOWS_HEARTBEAT_FREQUENCY in the environment, a Prefect profile or prefect.toml)."""
    from prefect.settings import get_current_settings, temporary_settings

    # Prefect 3.8.8 sends heartbeats by default (every 180 s) from a thread that sleeps in 1 s
    # steps, and a flow run ends by waiting for that thread to wake: 0 to 1 s per run (0.51 s,
    # median of 5 cached reruns, which went from 1.13 s to 0.55 s without it). Only the crash
    # automation reads heartbeats (deployments/crashes.py, which needs the variable set, as the
    # team profile sets it for its workers); its 90 s window would also mark a run sending the
    # default 180 s heartbeats Crashed while it still runs. No environment value means "off", so
    # it is set here.
    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield


@contextmanager
def project_or_exit(path: Path, overrides: list[str] | None = None, read_code: bool = True) -> Iterator[Project]:
    """`services.open_project` for a command (the settings of its environment, the params file and
    its --set overrides, the services started on first use and stopped at the end), or exit 2
    with the message naming the key and the reason. `read_code=False`: the project code the params
    name is not read (a process that only runs models, which carry their own)."""
    from driftline import services

    with ExitStack() as stack:
        try:
            project = stack.enter_context(services.open_project(params_path=path, overrides=overrides or [],
                                                                read_code=read_code))
        except ConfigError as err:
            fail(str(err), 2)
        yield project


def fail(message: str, code: int) -> NoReturn:
    typer.secho(message, fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def registry_answers(command: str) -> Iterator[None]:
    """Exit 3 with one sentence naming the registry when it does not answer (after the store's
    retries), instead of a traceback: the same exit `train` and `deploy` document."""
    from driftline.adapters.registry.faults import RegistryUnreachable

    try:
        yield
    except RegistryUnreachable as err:
        fail(f"{command} stopped: {err}. Retry when the registry answers.", 3)


def print_where(settings: Settings, result: dict | None = None) -> None:
    """Where to look: the run's and the version's own pages when `result` (a training run's)
    names them, else the UIs' front pages."""
    result = result or {}
    mlflow_ui, prefect_ui = settings.mlflow_ui_url.rstrip("/"), settings.prefect_ui_url.rstrip("/")
    if result.get("run_url"):
        typer.echo(f"MLflow run:    {result['run_url']}  (`driftline up` or `make ui` starts the UI)")
    if result.get("version") and result.get("model_name"):
        typer.echo(f"Model version: {mlflow_ui}/#/models/{result['model_name']}/versions/{result['version']}")
    if result.get("flow_run_id"):
        typer.echo(f"Prefect run:   {prefect_ui}/runs/flow-run/{result['flow_run_id']}  (the training report "
                   "is under Artifacts)")
    if not result.get("run_url"):
        typer.echo(f"MLflow UI:  {mlflow_ui}  (`driftline up` or `make ui` starts it)")
        typer.echo(f"Prefect UI: {prefect_ui}  (flow runs and the training report artifact)")
