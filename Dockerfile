# syntax=docker/dockerfile:1
# Two images from one file, both from the locked environment (uv.lock), both running as a
# non-root user:
#   docker build --target server -t driftline-server .   # the model server (`driftline serve`)
#   docker build --target worker -t driftline-worker .   # a Prefect worker that runs the flows
# Neither carries data, models or credentials: point them at the team's services with
# DRIFTLINE_TRACKING_URI, PREFECT_API_URL, the S3 variables (see the README, "For a team").

FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # sklearn's OpenMP: one thread per process unless told otherwise (replicas share the node's cores)
    OMP_NUM_THREADS=1

FROM base AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# The dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-dev --no-install-project
COPY driftline/ driftline/
COPY tasks/ tasks/
COPY flows/ flows/
COPY deployments/ deployments/
COPY params.yaml prefect.yaml dvc.yaml ./
RUN --mount=type=cache,target=/root/.cache/uv uv sync --locked --no-dev --no-editable

# What both images share: the environment, the user. Each adds only its own port and checks.
FROM base AS runtime
# LightGBM's wheel links the system's OpenMP runtime (scikit-learn's and XGBoost's bring their own):
# both images load LightGBM models. Not pinned, as git below.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 driftline \
    && useradd --system --uid 10001 --gid driftline --home-dir /app --shell /usr/sbin/nologin driftline
COPY --from=build --chown=driftline:driftline /app /app
ENV PATH=/app/.venv/bin:$PATH \
    DRIFTLINE_PROJECT_DIR=/app \
    DRIFTLINE_SERVE_HOST=0.0.0.0 \
    DRIFTLINE_SERVE_PORT=8080
WORKDIR /app

FROM runtime AS server
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
ENTRYPOINT ["driftline"]
CMD ["serve"]

FROM runtime AS worker
USER 0
# DVC needs git to pull the data a training run reads. Debian's security updates replace exact
# versions, so the package is not pinned (the base image's tag pins the release).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
USER 10001:10001
ENTRYPOINT ["prefect"]
CMD ["worker", "start", "--pool", "driftline-process", "--type", "process"]
