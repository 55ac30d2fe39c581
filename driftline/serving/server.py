"""Starting the model server: one uvicorn worker, threads set on purpose.

With OpenMP left to pick its own thread count, several workers oversubscribed the two cores
here and throughput fell to 1-2 requests/s; the model's threads are set explicitly instead.
"""

from __future__ import annotations

import os

from driftline.config import Params, ServeSettings, Settings


def build_app(settings: Settings, params: Params, cfg: ServeSettings):
    from driftline import services
    from driftline.serving.app import create_app

    store = services.mlflow_store(settings, params).start()
    return create_app(store, cfg, cfg.logs(settings))


def run(settings: Settings, params: Params, cfg: ServeSettings) -> None:
    os.environ["OMP_NUM_THREADS"] = str(cfg.model_threads)
    import uvicorn

    uvicorn.run(build_app(settings, params, cfg), host=cfg.host, port=cfg.port, workers=1,
                log_level="warning", access_log=False)
