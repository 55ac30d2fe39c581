"""Pictures into MLflow: each figure drawn and logged as a PNG artifact of the run. A figure
that fails to draw or to upload is reported and skipped: a picture never fails a run.

The figures come from `core.plots.subplots`, matplotlib's object API with no global registry,
so the warm-up, a run's pictures and another flow run's may draw at the same time."""

from __future__ import annotations

import threading
from collections.abc import Callable

from driftline.adapters.registry.store import MlflowStore


def log_figures(store: MlflowStore, run_id: str, figures: dict[str, Callable[[], object]]
                ) -> tuple[list[str], list[str]]:
    """The artifact paths logged, and one line per figure that was not."""
    logged, failed = [], []
    for path, draw in figures.items():
        try:
            store.client.log_figure(run_id, draw(), path)
            logged.append(path)
        except Exception as err:  # noqa: BLE001 - the run's decision stands without its picture
            failed.append(f"{path}: {type(err).__name__}: {err}")
    return logged, failed


def warm_up() -> threading.Thread:
    """Import matplotlib and draw one small figure in a background thread: about 0.6 s of the
    pictures' cost, paid while the training runs (its threads are in native code) instead of
    after it."""
    def draw() -> None:
        import io

        from driftline.core.plots import subplots

        fig, ax = subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        ax.set(title="warm-up", xlabel="x")
        fig.tight_layout()
        fig.savefig(io.BytesIO(), format="png")

    thread = threading.Thread(target=draw, name="pictures-warm-up", daemon=True)
    thread.start()
    return thread
