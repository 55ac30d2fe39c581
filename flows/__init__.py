"""Prefect flows: they sequence tasks and decide."""

from driftline.adapters.s3 import use_safe_checksums

# Flows run by a worker never pass through the CLI, which sets this for S3-compatible stores.
use_safe_checksums()
