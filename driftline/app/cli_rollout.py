"""The `driftline` commands about the registered model and its rollouts: status, deploy,
rollback, history (registered in cli.py, in the order `--help` lists them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
from driftline.config import STRATEGIES

# A lease whose holder was killed stays until it expires (an hour at most): a person may end it.
BREAK_HINT = "If its holder is gone, `driftline rollback --break-lease` breaks the lease (recorded in the history)"

if TYPE_CHECKING:
    from driftline.services import Project


def status(
    params: ParamsOpt = Path("params.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the registered model versions, their aliases and holdout metrics.

    It also shows the rollout in progress: who holds the model's rollout lease, since when, until
    when.
    """
    from driftline.adapters.registry import rollout_state

    with project_or_exit(params) as project, registry_answers("status"):
        doc = _status(project)
    settings, p = project.settings, project.params
    versions = doc["versions"]
    if as_json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"model {p.registry.model_name} ({doc['tracking_uri']})")
    if not versions:
        typer.echo("  no versions registered yet: run `driftline train`")
    for v in versions:
        aliases = " ".join(f"@{a}" for a in v["aliases"]) or "-"
        metrics = ", ".join(f"{k}={val}" for k, val in v["metrics"].items())
        waiting = "  [waits for the rollout to end]" if v["awaiting_rollout"] else ""
        typer.echo(f"  v{v['version']:<3} {aliases:<24} {metrics}  (data {v['dvc_md5']}, {v['reason']}){waiting}")
    typer.echo(rollout_state.status_line(doc["rollout"]))
    for line in doc["moved_without_record"]:
        typer.secho(f"WARNING: {line}", fg=typer.colors.RED)
    print_where(settings)


def _status(project: Project) -> dict:
    from driftline.adapters.registry import history, rollout_state, tags
    from driftline.adapters.registry.faults import safe_uri  # a URI's password is never printed

    settings, p, store = project.settings, project.params, project.registry
    versions = []
    for v in store.versions():
        metrics = {k.removeprefix("holdout_"): round(val, 4) for k, val in store.run_metrics(v.run_id).items()
                   if k.startswith("holdout_")}
        versions.append({"version": v.version, "aliases": v.aliases, "run_id": v.run_id,
                         "dvc_md5": v.tags.get(tags.DVC_MD5_TAG), "git_commit": v.tags.get(tags.GIT_COMMIT_TAG),
                         "reason": v.tags.get(tags.REASON_TAG), "metrics": metrics,
                         "awaiting_rollout": v.tags.get(tags.AWAITING_TAG) == "true"})
    return {"model_name": p.registry.model_name, "tracking_uri": safe_uri(settings.mlflow_uri), "versions": versions,
            "rollout": rollout_state.describe(store),
            "moved_without_record": history.describe(history.unrecorded(store))}


def deploy(
    version: Annotated[str | None, typer.Option(help="Version to deploy; default @challenger.")] = None,
    strategy: Annotated[str | None, typer.Option(help=" | ".join(STRATEGIES))] = None,
    params: ParamsOpt = Path("params.yaml"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override KEY=VALUE.")] = None,
    force: Annotated[bool, typer.Option(help="Deploy a version whose gates did not pass (driftline.gates tag); "
                                             "recorded on the version and in the history.")] = False,
    lease_wait: Annotated[float, typer.Option(min=0, help="Seconds to wait for another rollout of the model to "
                                                          "end before giving up (exit 4).")] = 30.0,
    lease_ttl: Annotated[float, typer.Option(min=1, max=3600, help=(
        "Seconds the rollout lease outlives this process if it is killed (renewed every third of it).")
    )] = 60.0,
) -> None:
    """Roll a challenger out against live traffic; promote it, or roll it back automatically.

    Exit codes: 0 promoted (or already champion); 1 rolled back; 2 nothing to deploy, a bad
    option, or a version whose gates did not pass (without --force); 3 the model registry does
    not answer; 4 another rollout of the model holds its rollout lease (the message names it);
    5 promoted, but a model server still serves another version (the message names it and why).
    """
    with project_or_exit(params, set_) as project:
        settings = project.settings
    if strategy not in (None, *STRATEGIES):
        fail(f"--strategy: {strategy!r} is not one of {', '.join(STRATEGIES)}", 2)
    prefect_env()
    from driftline.adapters.registry.lease_info import LeaseHeld
    from driftline.adapters.registry.store import RegistryUnreachable
    from flows.rollout import NotSwitched, RolledBack, rollout

    try:
        with flow_settings():
            result = rollout(version=version, strategy=strategy, params_path=str(params), overrides=set_ or [],
                             project_dir=str(settings.root), force=force, lease_wait_seconds=lease_wait,
                             lease_ttl_seconds=lease_ttl)
    except RolledBack as err:
        fail(str(err), 1)
    except ValueError as err:
        fail(str(err), 2)
    except RegistryUnreachable as err:
        fail(f"deploy stopped: {err}", 3)
    except LeaseHeld as err:  # another rollout of this model is in progress
        fail(f"deploy stopped: {err}. {BREAK_HINT}", 4)
    except NotSwitched as err:
        fail(str(err), 5)
    typer.secho(result["message"], fg=typer.colors.GREEN)


def rollback(params: ParamsOpt = Path("params.yaml"),
             reason: Annotated[str, typer.Option(help="Recorded in the history.")] = "manual rollback",
             break_lease: Annotated[bool, typer.Option(help="Break the model's rollout lease first, whoever holds it "
                                                            "(one left by a rollout whose process is gone); "
                                                            "recorded in the history.")] = False) -> None:
    """Restore @previous as @champion, and say what changed.

    Exit codes: 2 there is no @previous; 3 the model registry does not answer; 4 a rollout in
    progress holds the model (the message names it, and --break-lease breaks it); 5 the registry
    moved, but a model server still serves another version (@previous would not load there: the
    message names the server and the error).
    """
    with project_or_exit(params) as project:  # a bad config fails here, naming the key, not inside the flow
        settings = project.settings
    prefect_env()
    from driftline.adapters.registry.lease_info import LeaseHeld
    from flows.rollout import NotSwitched
    from flows.rollout import rollback as rollback_flow

    try:
        with registry_answers("rollback"), flow_settings():
            result = rollback_flow(params_path=str(params), project_dir=str(settings.root), reason=reason,
                                   break_lease=break_lease)
    except ValueError as err:
        fail(str(err), 2)
    except LeaseHeld as err:
        fail(f"rollback stopped: {err}. {BREAK_HINT}", 4)
    except NotSwitched as err:
        fail(str(err), 5)
    typer.secho(result["message"], fg=typer.colors.GREEN)


def history(params: ParamsOpt = Path("params.yaml"),
            as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List every alias change: when, which version to which, why, by which flow run."""
    from datetime import UTC, datetime

    with project_or_exit(params) as project, registry_answers("history"):
        rows = project.registry.history()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        when = datetime.fromtimestamp(r["time"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        typer.echo(f"{when}  @{r['alias']:<10} {r['from']:>4} -> {r['to']:<4}  {r['reason']}  "
                   f"(flow run {r['flow_run_id']})")


def card(params: ParamsOpt = Path("params.yaml"),
         version: Annotated[str | None, typer.Option(help="Registered version (default: @champion).")] = None,
         html: Annotated[bool, typer.Option("--html", help="The HTML rendering instead of Markdown.")] = False) -> None:
    """Print the model card of a registered version (default: @champion).

    The card: intended use, data, training configuration, metrics beside the champion's, slices,
    behavioural tests, gates, lineage and known limitations.
    """
    import tempfile

    from driftline.adapters.registry.store import CHAMPION

    with project_or_exit(params) as project, registry_answers("card"):
        store, p = project.registry, project.params
        info = store.version(version) if version else store.version_by_alias(CHAMPION)
        if info is None:
            fail(f"{p.registry.model_name} has no {'version ' + version if version else '@champion'}", 2)
        name = f"card/model_card.{'html' if html else 'md'}"
        if name not in [a.path for a in store.client.list_artifacts(info.run_id, "card")]:
            fail(f"version {info.version} was registered without a model card (before cards existed); "
                 "retrain it to get one", 2)
        with tempfile.TemporaryDirectory() as tmp:
            typer.echo(Path(store.client.download_artifacts(info.run_id, name, tmp)).read_text())
