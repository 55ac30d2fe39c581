"""Starting the model server: one uvicorn worker, threads set on purpose.

With OpenMP left to pick its own thread count, several workers oversubscribed the two cores
here and throughput fell to 1-2 requests/s; the model's threads are set explicitly instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from driftline.config import Params, ServeSettings, Settings

if TYPE_CHECKING:
    from driftline.adapters.registry.store import MlflowStore
    from driftline.services import Project


def build_app(settings: Settings, params: Params, cfg: ServeSettings, store: MlflowStore | None = None):
    """The server's ASGI app over `store` (the project's registry; by default one built from the
    settings and params, as the composition root builds it)."""
    from driftline import services
    from driftline.serving.app import create_app
    from driftline.serving.ids import RequestIds, server_key

    store = store or services.mlflow_store(settings, params).start()
    logs = cfg.logs(settings)
    # Rows the log cannot write are kept on local disk: beside a local log, in the state dir for S3.
    quarantine = settings.state / "quarantine" if "://" in str(logs) else Path(logs) / "quarantine"
    ids = RequestIds(server_key(cfg.request_id_key, settings.state), cfg.feedback_max_age_hours * 3600)
    return create_app(store, cfg, logs, ids, params.data.features, quarantine)


def exposed(cfg: ServeSettings) -> str | None:
    """Why the server must not start as configured: listening beyond loopback (a container's
    0.0.0.0) with no predict token lets anyone who reaches the port use the model."""
    import ipaddress

    if cfg.token or cfg.public_without_token or cfg.host == "localhost":
        return None
    try:
        if ipaddress.ip_address(cfg.host).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to anything
    return (f"DRIFTLINE_SERVE_HOST={cfg.host} listens beyond loopback with no DRIFTLINE_SERVE_TOKEN: set a token, "
            "or DRIFTLINE_SERVE_PUBLIC_WITHOUT_TOKEN=true if something in front of the server checks its callers")


def uvicorn_config(app, cfg: ServeSettings, **overrides):
    """The uvicorn configuration the server runs with (the tests' servers too): one worker, the
    bounded httptools protocol (serving/connections: a header deadline and a connection cap), no
    websockets (no endpoint takes one)."""
    import uvicorn

    from driftline.serving.connections import protocol_class

    # On SIGTERM uvicorn stops accepting, lets the requests under way finish (5 s at most: a client
    # that never finishes must not hold the stop), then the app's shutdown flushes the logs. The
    # whole stop stays within the 10 s a stack (or a container platform's grace) gives a part.
    settings = {"host": cfg.host, "port": cfg.port, "workers": 1, "log_level": "warning", "access_log": False,
                "timeout_graceful_shutdown": 5, "http": protocol_class(cfg), "ws": "none", **overrides}
    return uvicorn.Config(app, **settings)


def room_for_connections(max_connections: int) -> None:
    """Raise the soft open-file limit to hold `max_connections` sockets beside the process's own
    files (the registry, the logs, the models): past the limit accept() fails before the cap can
    choose which connection to close. A hard limit lower than that is left as it is."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max_connections + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))


def run(project: Project, cfg: ServeSettings) -> None:
    """Serve until stopped, over the open project's registry."""
    os.environ["OMP_NUM_THREADS"] = str(cfg.model_threads)
    import uvicorn

    room_for_connections(cfg.max_connections)
    server = uvicorn.Server(uvicorn_config(build_app(project.settings, project.params, cfg, project.registry), cfg))
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn raises a captured Ctrl-C again after its stop
        server.run()
    if not server.started:  # as uvicorn.run ends: a port in use, a failed startup
        sys.exit(3)
