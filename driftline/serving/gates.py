"""Who may open a hot-path route, judged from the request's headers before its body is read (a
`Route`'s `gate`): a caller without the credential is answered at once, and the server never
reads, buffers or parses a body for it. The handlers check the same credentials again."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from driftline.config import ServeSettings
from driftline.serving.hotpath import Gate, Headers

WRONG_TOKEN = "missing or wrong bearer token"
NOT_A_LABELLER = "this token may not post labels: /feedback takes the label token (DRIFTLINE_SERVE_FEEDBACK_TOKEN)"
WRONG_LABEL_TOKEN = "missing or wrong bearer token (the label token)"
NO_LABELS = ("this server takes no labels: it has no label token (DRIFTLINE_SERVE_FEEDBACK_TOKEN), and anonymous "
             "labels are off")
STAGING = "the staging server takes no feedback; send labels to production"


def presents(*tokens: str | None) -> Callable[[Headers], bool]:
    """Whether a request's headers carry `Authorization: Bearer <one of tokens>` (each compared in
    constant time); never, when no token is given."""
    expected = [f"Bearer {t}".encode() for t in tokens if t]

    def check(headers: Headers) -> bool:
        given = headers.get(b"authorization", b"")
        return any([hmac.compare_digest(given, e) for e in expected])  # a list: every token compared
    return check


def bearer(token: str | None, read: Callable[[Headers], Headers] = lambda headers: headers) -> Gate | None:
    """A prediction route's gate: open to `token`'s holders, or to anyone when there is no token.
    `read` turns the credentials the route also accepts into a bearer token (HTTP Basic with the
    token as its password, on the protocols that take it: protocols.token_from_basic)."""
    if not token:
        return None
    trusted = presents(token)

    def gate(headers: Headers) -> tuple[int, str] | None:
        return None if trusted(read(headers)) else (401, WRONG_TOKEN)
    return gate


def labels(cfg: ServeSettings) -> Gate | None:
    """`/feedback`'s gate: only the label token opens it; a predict or metrics token is 403 (who
    may predict may not judge); anyone, on a server that takes anonymous labels and has no label token."""
    if cfg.role == "staging":
        return lambda headers: (404, STAGING)
    if cfg.anonymous_labels and not cfg.feedback_token:
        return None
    labeller, other = presents(cfg.feedback_token), presents(cfg.token, cfg.metrics_token)

    def gate(headers: Headers) -> tuple[int, str] | None:
        if labeller(headers):
            return None
        if other(headers):
            return 403, NOT_A_LABELLER
        return (401, WRONG_LABEL_TOKEN) if cfg.feedback_token else (403, NO_LABELS)
    return gate
