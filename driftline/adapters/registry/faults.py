"""Absent or unreachable: the registry's two kinds of "no", told apart.

MLflow raises one exception class for "there is no such alias" and for "the SQLite file is
locked" or "the tracking server does not answer". Reading every one of them as "no alias" made
training register its model as the first `@champion` after a single transient error. Here an
answer is *absent* only when MLflow says so; anything else is retried a bounded number of times
with backoff and then raised as `RegistryUnreachable`, and callers change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")

# Three attempts, 0.5 s then 1 s apart. Each attempt already carries the store's own patience:
# MLflow's HTTP client retries and times out per MLFLOW_HTTP_REQUEST_* (defaults: 7 retries,
# 120 s), and SQLite waits 20 s for a lock (MLflow sets busy_timeout=20000).
ATTEMPTS = 3
_WAIT = {"multiplier": 0.5, "max": 4.0}

# MLflow 3.17 answers a missing alias with INVALID_PARAMETER_VALUE, "Registered model alias X
# not found." (SqlAlchemyStore.get_model_version_by_alias; a tracking server passes the same code
# and text through its REST answer). A missing registered model or version is RESOURCE_DOES_NOT_EXIST.
_ALIAS_MISSING = re.compile(r"Registered model alias \S+ not found")


class RegistryError(RuntimeError):
    """The registry refused or failed an operation."""


class RegistryUnreachable(RegistryError):
    """The registry did not answer, after retries: nothing may be decided from its silence."""

    def __init__(self, tracking_uri: str, what: str, cause: BaseException, attempts: int):
        self.tracking_uri = safe_uri(tracking_uri)
        self.what = what
        self.cause = cause
        super().__init__(f"the model registry at {self.tracking_uri} is unreachable: {what} failed "
                         f"{attempts} time{'s' if attempts > 1 else ''}, last with {type(cause).__name__}: "
                         f"{_without_password(_gist(cause), tracking_uri)}")


def _without_password(text: str, uri: str) -> str:
    """MLflow's HTTP errors quote the whole URL they called, credentials included."""
    password = urlsplit(uri).password
    return text.replace(f":{password}@", ":***@") if password else text


def _gist(err: BaseException) -> str:
    """The error in one line: MLflow's HTTP errors run to 500 characters with the reason
    ("Connection refused", "Read timed out") at the end, so keep both ends."""
    text = " ".join(str(err).split())
    return text if len(text) <= 400 else f"{text[:160]} ... {text[-220:]}"


def safe_uri(uri: str) -> str:
    """The tracking URI without a password (postgresql://user:secret@host/db)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def unreachable(tracking_uri: str, what: str, err: Exception) -> Exception:
    """A failed call that is not retried (a create: not idempotent) said as every registry failure is."""
    from mlflow.exceptions import MlflowException

    if isinstance(err, MlflowException | OSError):
        return RegistryUnreachable(tracking_uri, what, err, 1)
    return err


def is_absent(err: BaseException) -> bool:
    """MLflow said the thing does not exist (as opposed to failing to say anything)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(err, MlflowException):
        return False
    if err.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    return err.error_code == "INVALID_PARAMETER_VALUE" and bool(_ALIAS_MISSING.search(str(err.message)))


def _transient(err: BaseException) -> bool:
    from mlflow.exceptions import MlflowException

    return isinstance(err, MlflowException | OSError) and not is_absent(err)


_RAISE: Any = object()


def call(tracking_uri: str, what: str, fn: Callable[..., T], *args: Any, absent: Any = _RAISE, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)`, retried on anything but "absent".

    When MLflow answers "absent", return `absent` (or re-raise its error when no value is given).
    Store errors that outlast the retries raise `RegistryUnreachable` naming the URI and the cause.
    Only idempotent operations belong here: a retried write must not do its work twice.
    """
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

    retrying = Retrying(stop=stop_after_attempt(ATTEMPTS), wait=wait_exponential(**_WAIT),
                        retry=retry_if_exception(_transient), reraise=True)
    try:
        for attempt in retrying:
            with attempt:
                return fn(*args, **kwargs)
    except Exception as err:
        if is_absent(err):
            if absent is _RAISE:
                raise
            return absent
        if not _transient(err):
            raise
        # Not chained (`from None`): MLflow's error quotes the URL with its credentials, and a chained
        # cause is printed whole by every traceback (Prefect logs one for a failed flow run). The
        # message carries its gist without the password; `.cause` keeps the error itself.
        raise RegistryUnreachable(tracking_uri, what, err, retrying.statistics.get("attempt_number", ATTEMPTS)) \
            from None
    raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or raises
