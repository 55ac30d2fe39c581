"""What a deployment run may ask for. A run of a deployment can be started by anyone who reaches
the Prefect API, with any parameters: measured before this guard, one anonymous
`create_flow_run` naming a params file in another directory ran the Python file beside it and
registered its model as the first @champion. So a deployment run keeps the project, the Dask
cluster, `force` and the lease length its deployment was made with, reads a params file only from
inside that project, and may tune with `overrides` but not loosen (driftline.config.tuning).
Runs started directly (the CLI, the tests) are the caller's own and are not guarded."""

from __future__ import annotations

from typing import Any

from prefect.runtime import deployment

from driftline.config import ConfigError, Settings, load_params
from driftline.config.tuning import refused


def deployment_defaults() -> dict[str, Any] | None:
    """The parameters the deployment itself holds; None outside a deployment run."""
    ident = deployment.id
    if not ident:
        return None
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return dict(client.read_deployment(ident).parameters or {})


def check(params_path: str, overrides: list[str] | None, fixed: dict[str, tuple[Any, Any]]) -> dict[str, Any] | None:
    """ConfigError naming every parameter of this run that its deployment does not allow. `fixed`:
    name -> (this run's value, the flow's default) of the parameters that must stay the
    deployment's own (or the flow's default, where the deployment sets none). The deployment's
    parameters, or None outside a deployment run."""
    defaults = deployment_defaults()
    if defaults is None:
        return None
    problems = [f"{name}: a deployment run cannot set it (the deployment's is {defaults.get(name, default)!r})"
                for name, (value, default) in fixed.items() if value != defaults.get(name, default)]
    root = Settings.for_project(defaults.get("project_dir")).root.resolve()
    target = (root / params_path).resolve()
    if not target.is_relative_to(root):
        problems.append(f"params_path: {params_path!r} resolves to {target}, outside the project {root}")
    elif list(overrides or []) != list(defaults.get("overrides") or []):
        base = defaults.get("params_path", params_path)
        try:
            baseline = load_params(root / base, defaults.get("overrides") or [], read_code=False)
            candidate = load_params(target, overrides or [], read_code=False)
        except ConfigError as err:
            raise ConfigError(f"overrides: {err}") from None
        problems += [f"overrides: {line}" for line in refused(baseline, candidate)]
    if problems:
        raise ConfigError("this deployment run asks for what its deployment does not allow:\n" + "\n".join(problems))
    return defaults


def rollout_request(version: str | None, strategy: str | None, challenger: str | None, written: str,
                    defaults: dict[str, Any]) -> None:
    """A deployment run rolls out @challenger (the version training registered and announced) with
    the strategy its deployment or the params name: a forged `driftline.challenger.registered`
    could otherwise roll out any version that once passed its gates, by any strategy."""
    problems = []
    if version is not None and str(version) != str(challenger):
        problems.append(f"version: {version!r} is not @challenger ({challenger}); a deployment run rolls out "
                        "@challenger only")
    allowed = defaults.get("strategy") or written
    if strategy is not None and strategy != allowed:
        problems.append(f"strategy: {strategy!r} is not the deployment's ({allowed})")
    if problems:
        raise ConfigError("this deployment run asks for what its deployment does not allow:\n" + "\n".join(problems))
