"""The `driftline` commands that start and stop processes: `up` (the local or team stack),
`down` (stop it from elsewhere) and `demo` (the whole loop on a stack of its own)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from driftline.app.cli_common import ParamsOpt, fail, prefect_env, project_or_exit
from driftline.config import Settings


def up(params: ParamsOpt = Path("params.yaml"),
       set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE in every deployment.")] = None,
       mlflow_ui: Annotated[bool, typer.Option(help="Start the MLflow UI.")] = True,
       profile: Annotated[str, typer.Option(help="embedded: SQLite, deployments served from this process, "
                                            "one model server. team: PostgreSQL, an MLflow tracking server, a "
                                            "work pool with workers, two model server replicas.")] = "embedded",
       ) -> None:
    """Start the local stack; Ctrl-C stops all of it.

    The stack: a Prefect server and its UI, the MLflow UI, the deployments (served, so their
    schedules and triggers are live) and the model server.
    """
    from driftline.app.lifecycle import StackError, interruptible
    from driftline.app.stack import Stack

    if profile not in ("embedded", "team"):
        fail(f"--profile: {profile!r} is not one of embedded, team", 2)
    if profile == "team" and not mlflow_ui:
        fail("--no-mlflow-ui: the team profile's MLflow tracking server is the registry every part uses, "
             "and its UI comes with it", 2)
    interruptible()
    with project_or_exit(params, set_) as project:
        settings = project.settings
    prefect_env()  # for the server it starts and every process after it
    stack: Stack
    if profile == "team":
        from driftline.app.team import TeamStack

        if set_:
            fail("--set: the team profile's deployments come from prefect.yaml; edit params.yaml instead", 2)
        stack = TeamStack(settings, params, [], True, typer.echo)
    else:
        stack = Stack(settings, params, set_ or [], mlflow_ui, typer.echo)
    try:
        stack.start()  # a part that fails to start stops the ones started before it
    except StackError as err:
        fail(f"the stack did not start: {err}", 1)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None
    try:
        typer.echo(f"Logs: {settings.state / 'logs'}. Ctrl-C stops everything (`driftline down` does from elsewhere).")
        stack.wait()
    except KeyboardInterrupt:
        typer.echo("stopping")
    except StackError as err:
        typer.secho(f"the stack stopped: {err}", fg=typer.colors.RED, err=True)
        stack.stop()
        raise typer.Exit(1) from None
    finally:
        stack.stop()


def down() -> None:
    """Stop the stack that `driftline up` or the demo started from this project, from elsewhere.

    It asks the stack's process to stop every part it started, as Ctrl-C would; when that process
    is gone (killed), it stops the parts it recorded. The demo's stack is found in its own state
    directory too. Exit 0 when a stack was stopped or none was running, 1 when it would not stop.
    """
    from driftline.app.lifecycle import StackError
    from driftline.app.lifecycle import down as stop_stack

    settings = Settings()
    places = [settings.state] + ([settings.state / "demo"] if settings.state_dir is None else [])
    try:
        stopped = [place for place in places if stop_stack(place, typer.echo, quiet=True)]
    except StackError as err:
        fail(str(err), 1)
    if not stopped:
        typer.echo(f"no stack is running from {' or '.join(map(str, places))}")


def demo(params: ParamsOpt = Path("params.yaml"),
         keep_serving: Annotated[bool, typer.Option(help="Leave the stack running at the end.")] = True,
         mlflow_ui: Annotated[bool, typer.Option(help="Start the MLflow UI.")] = True,
         ) -> None:
    """Run the whole loop on the demo data, with nobody pressing a button.

    A champion, live traffic, drift, a retraining started by the drift event, a canary that
    promotes it, and a bad challenger rolled back.
    """
    from driftline.app import demo as story
    from driftline.app.lifecycle import StackError, interruptible

    interruptible()
    settings = Settings()
    if settings.state_dir is None:
        # Its own sandbox, new each time: a second demo starts from the same story, not from the
        # first one's champion (trained on the drifted population, so "normal" traffic drifts).
        sandbox = settings.state / "demo"
        shutil.rmtree(sandbox, ignore_errors=True)
        os.environ["DRIFTLINE_STATE_DIR"] = str(sandbox)
        typer.echo(f"The demo's registry, logs and model server state: {sandbox} (new for each demo; "
                   "`DRIFTLINE_STATE_DIR=.driftline/demo uv run driftline status` reads it afterwards)")
    prefect_env()
    with project_or_exit(params) as project:
        try:
            story.run(project, params, typer.echo, keep_serving, mlflow_ui)
        except (story.DemoFailed, StackError, TimeoutError) as err:
            fail(f"demo stopped: {err}", 1)
        except KeyboardInterrupt:
            # The stack has stopped and said so (its line is the last one); a traceback after it
            # would bury that line. 130 is the shell's code for a run ended by Ctrl-C.
            raise typer.Exit(130) from None
