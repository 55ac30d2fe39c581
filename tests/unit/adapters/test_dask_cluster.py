"""What a distributed fit's task retries: a fit that failed because the cluster lost a worker or
a connection (as Dask and XGBoost raise it, directly or as the cause of another error), never a
fit that fails on its own parameters or data."""

from __future__ import annotations

from distributed.comm.core import CommClosedError
from distributed.scheduler import KilledWorker
from xgboost.core import XGBoostError

from driftline.adapters.dask_cluster import Shape, lost_worker


def _caused(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as err:
            raise outer from err
    except BaseException as err:  # noqa: BLE001 - the chained exception is the value under test
        return err


def test_a_lost_worker_is_told_from_a_failing_fit():
    assert lost_worker(KilledWorker("do_train-1", "tcp://127.0.0.1:1", None))
    assert lost_worker(CommClosedError("in <TCP>: Stream is closed"))
    assert lost_worker(ConnectionResetError(104, "Connection reset by peer"))
    assert lost_worker(_caused(RuntimeError("the fit failed"), CommClosedError("closed")))
    assert lost_worker(XGBoostError("[12:00:01] socket.h:220: Failed to recv from peer: Connection reset by peer"))
    assert not lost_worker(XGBoostError("Invalid Input: 'max_depth', valid values are: non-negative"))
    assert not lost_worker(ValueError("a binary task needs two classes in the training rows, found 1"))
    assert not lost_worker(KeyError("loan_purpose"))


def test_the_cluster_shape_names_what_the_fit_is_reproducible_for():
    shape = Shape(2, 1, 8, (("xgboost", "3.2.0"), ("dask", "2026.8.0")))
    assert shape.text() == "2 workers x 1 thread(s), 8 partitions; xgboost 3.2.0, dask 2026.8.0"
    assert shape.key() != Shape(1, 1, 8, shape.versions).key() != Shape(2, 1, 16, shape.versions).key()
