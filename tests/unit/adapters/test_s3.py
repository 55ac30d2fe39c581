"""S3 addresses and error messages, without a network."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from driftline.adapters.s3 import S3Location, explain


def test_s3_addresses_parse_and_print_back():
    loc = S3Location.parse("s3://bucket/some/prefix/", "http://127.0.0.1:9000")
    assert (loc.bucket, loc.prefix, loc.url) == ("bucket", "some/prefix", "s3://bucket/some/prefix")
    assert loc.where == "bucket 'bucket' at http://127.0.0.1:9000"
    assert S3Location.parse("s3://bucket").where == "bucket 'bucket' at AWS S3"


@pytest.mark.parametrize("url", ["bucket/prefix", "s3:///prefix", "https://bucket/x", ""])
def test_other_addresses_are_refused(url):
    with pytest.raises(ValueError, match="s3://BUCKET"):
        S3Location.parse(url)


@pytest.mark.parametrize(("code", "status", "needle", "transient"), [
    ("NoSuchBucket", 404, "does not exist", False),
    ("InvalidAccessKeyId", 403, "credentials were refused (InvalidAccessKeyId)", False),
    ("SignatureDoesNotMatch", 403, "credentials were refused", False),
    ("InternalError", 500, "InternalError from the store", True),
])
def test_store_errors_become_one_sentence_naming_bucket_and_endpoint(code, status, needle, transient):
    err = ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "HeadBucket")
    problem = explain(err, S3Location.parse("s3://b/p", "http://minio:9000"), "check")
    assert needle in str(problem) and "bucket 'b' at http://minio:9000" in str(problem)
    assert problem.transient is transient


def test_missing_credentials_say_where_they_are_read_from():
    problem = explain(NoCredentialsError(), S3Location.parse("s3://b"), "check")
    assert "no AWS credentials found" in str(problem) and "AWS_PROFILE" in str(problem)
