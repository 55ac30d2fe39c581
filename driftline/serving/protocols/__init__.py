"""The protocols clients already speak, translated to and from driftline's records: MLflow's
scoring protocol (`mlflow_scoring`: `/invocations`, `/ping`, `/version`) and the Open Inference
Protocol v2 over REST (`oip`: `/v2/...`). Each module only reads its protocol's body into raw
records (`ModelServer.predict`'s `parse`) and writes the answer and the errors in its protocol's
shape: the checks, the canary split, the prediction log, the tokens, the limits and the metrics
are `ModelServer.predict`'s, whichever protocol a request used."""

from __future__ import annotations

import base64
import binascii

from driftline.serving.hotpath import Headers


def token_from_basic(headers: Headers) -> Headers:
    """HTTP Basic credentials read as the bearer token they carry as their password (any user
    name): clients that send no headers of their own, such as MLflow's `ScoringServerClient`, can
    pass the token through `requests`' ~/.netrc. Other headers are returned as they are."""
    auth = headers.get(b"authorization", b"")
    if auth[:6].lower() != b"basic ":
        return headers
    try:
        pair = base64.b64decode(auth[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return headers  # not Basic after all: refused as a wrong token
    _, colon, password = pair.partition(b":")
    return {**headers, b"authorization": b"Bearer " + password} if colon else headers


def encoded(headers: Headers) -> str | None:
    """Why a compressed body is refused, or None: a 1 MB gzip body can expand a thousandfold, past
    every limit the server sets on what it reads."""
    coding = headers.get(b"content-encoding", b"identity").strip().lower()
    if coding in (b"", b"identity"):
        return None
    return f"Content-Encoding {coding.decode('latin-1')[:40]!r} is not accepted: send the body uncompressed"

