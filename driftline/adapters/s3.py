"""S3 and S3-compatible stores (MinIO, Ceph, R2) through boto3: one place that builds clients,
checks buckets and turns botocore's failures into messages naming the endpoint and the bucket.

Credentials come only from the environment or the standard AWS files, never from config that is
committed, and never appear in a message. Nothing connects at import time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

# Botocore >= 1.36 sends CRC checksums on every upload by default, which several S3-compatible
# stores reject; "when_required" restores the old behaviour. Set before any client exists.
CHECKSUM_ENV = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
                "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


class S3Error(RuntimeError):
    def __init__(self, message: str, transient: bool = False, missing_bucket: bool = False):
        super().__init__(message)
        self.transient = transient
        self.missing_bucket = missing_bucket


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint_url: str | None = None

    @classmethod
    def parse(cls, url: str, endpoint_url: str | None = None) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"{url!r} is not an s3://BUCKET[/PREFIX] address")
        return cls(parts.netloc, parts.path.strip("/"), endpoint_url or None)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def where(self) -> str:
        return f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"


def use_safe_checksums() -> None:
    for key, value in CHECKSUM_ENV.items():
        os.environ.setdefault(key, value)


def client(location: S3Location, attempts: int = 4, timeout: float = 10.0):
    """A boto3 client with bounded retries (botocore's standard mode backs off exponentially
    with jitter on throttling, 5xx and connection errors) and bounded timeouts."""
    import boto3
    from botocore.config import Config

    use_safe_checksums()
    config = Config(retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=timeout,
                    read_timeout=timeout, request_checksum_calculation="when_required",
                    response_checksum_validation="when_required")
    return boto3.client("s3", endpoint_url=location.endpoint_url, config=config)


def botocore_error(err: BaseException) -> Exception | None:
    """The botocore failure behind `err` (itself, or a cause or context of it), if any."""
    seen = 0
    while err is not None and seen < 10:
        if type(err).__module__.startswith("botocore"):
            return err  # type: ignore[return-value]
        err = err.__cause__ or err.__context__
        seen += 1
    return None


def explain(err: Exception, location: S3Location, action: str) -> S3Error:
    """A botocore failure as one sentence naming the endpoint and bucket, never the secret."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from botocore.exceptions import ConnectionError as BotoConnectionError

    if isinstance(err, NoCredentialsError | PartialCredentialsError):
        return S3Error(f"cannot {action} {location.where}: no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or ~/.aws/credentials)")
    if isinstance(err, EndpointConnectionError | BotoConnectionError):
        return S3Error(f"cannot {action} {location.where}: the endpoint does not answer ({type(err).__name__}) "
                       "after retries with backoff", transient=True)
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket", "404") or (status == 404 and action.startswith("check")):
            return S3Error(f"cannot {action} {location.where}: the bucket does not exist "
                           "(`driftline init --remote ... --create-bucket` creates it)", missing_bucket=True)
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"):
            return S3Error(f"cannot {action} {location.where}: the credentials were refused ({code}); "
                           "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile in use")
        return S3Error(f"cannot {action} {location.where}: {code or status} from the store",
                       transient=status is not None and status >= 500)
    return S3Error(f"cannot {action} {location.where}: {type(err).__name__}: {err}")


def check_bucket(location: S3Location, create: bool = False) -> str:
    """Make sure the bucket answers (creating it on request); says what it found or did."""
    s3 = client(location)
    try:
        s3.head_bucket(Bucket=location.bucket)
        return f"{location.where} is reachable"
    except Exception as err:  # noqa: BLE001 - every failure becomes one clear message
        problem = explain(err, location, "check")
        if not (create and problem.missing_bucket):
            raise problem from None
    try:
        s3.create_bucket(Bucket=location.bucket)
    except Exception as err:  # noqa: BLE001
        raise explain(err, location, "create") from None
    return f"created {location.where}"


def count_objects(location: S3Location) -> int:
    s3 = client(location)
    try:
        pages = s3.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=location.prefix)
        return sum(page.get("KeyCount", 0) for page in pages)
    except Exception as err:  # noqa: BLE001
        raise explain(err, location, "list") from None
