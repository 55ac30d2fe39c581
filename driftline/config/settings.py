"""Where things live: `DRIFTLINE_*` environment variables (addresses and credentials never go in params.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS_DIR = "secrets"  # under the state directory: credentials a stack made, one file each


class ServeSettings(BaseSettings):
    """The model server. Every field reads `DRIFTLINE_SERVE_<NAME>` from the environment.

    `address` is where clients reach it (the blue-green smoke test, the demo's traffic, the local
    stack): `DRIFTLINE_SERVE_URL` when set (a server behind a proxy or load balancer), otherwise
    derived from the `host` and `port` it listens on.
    """

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_SERVE_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080
    url: str | None = Field(default=None, description="Where clients reach the server, e.g. behind a load "
                            "balancer; defaults to http://<host>:<port>.")
    replicas: str | None = Field(default=None, description="The production servers' addresses, comma-separated "
                                 "(the team profile sets them): a promotion or a rollback checks that each "
                                 "switched. Defaults to `url` (or http://<host>:<port>).")
    poll_seconds: float = Field(default=3.0, gt=0, description="How often the registry is read.")
    max_batch: int = Field(default=64, ge=1, description="Rows per batched predict call.")
    # 0: an idle prediction thread takes what is queued at once; while it predicts, the next batch
    # gathers anyway. 16 single-row clients in one process (benchmarks' harness, 2026-12-07): 5 ms
    # gave 1,576-1,659 requests/s through the plan and 600-875 through the Pipeline, 0 gave
    # 3,983-4,062 and 1,112-1,215: every batch waited the whole 5 ms for rows that were not coming.
    max_wait_ms: float = Field(default=0.0, ge=0, description="How long a request waits for company when the "
                               "model is idle (while it predicts, the next batch gathers anyway).")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_records: int = Field(default=10_000, ge=1, description="Records per request (or labels per /feedback).")
    body_timeout_seconds: float = Field(default=10.0, gt=0, description="A body not received whole within this "
                                        "is answered 408 (uvicorn has no body read timeout of its own).")
    max_pending_requests: int = Field(default=1024, ge=1, description="Requests waiting for a predict call; "
                                      "beyond it 503 with Retry-After.")
    max_log_backlog_rows: int = Field(default=100_000, ge=1, description="Log rows not yet written; beyond it "
                                      "503 with Retry-After rather than growing memory.")
    token: str | None = Field(default=None, repr=False, description="Bearer token for /predict, "
                              "/invocations and /v2/models/{name}/infer.")
    feedback_token: str | None = Field(default=None, repr=False, description="Bearer token for /feedback, the "
                                       "label credential: whoever holds it judges the models, so it must differ "
                                       "from `token`. Without it /feedback is refused (403) unless "
                                       "`anonymous_labels`.")
    anonymous_labels: bool = Field(default=False, description="Take labels from anyone, with no label token: "
                                   "for local experiments only (a client could label one arm of a canary wrong).")
    metrics_token: str | None = Field(default=None, repr=False, description="Bearer token for /metrics and the "
                                      "rollout on /models (Prometheus, the deploy flows). A server holding any "
                                      "token shows the rollout (arm, weight, versions) only to callers presenting "
                                      "one of its tokens.")
    public_without_token: bool = Field(default=False, description="Listen beyond loopback (e.g. host 0.0.0.0) "
                                       "with no `token`: refused unless this is set.")
    header_timeout_seconds: float = Field(default=10.0, gt=0, description="A connection that has not sent a "
                                          "request's headers whole within this (of opening, or of its previous "
                                          "answer) is closed.")
    max_connections: int = Field(default=1000, ge=2, description="Open connections; beyond it the one idle the "
                                 "longest (no request under way) is closed, or, when none is idle, the new "
                                 "connection is answered 503.")
    request_id_key: str | None = Field(default=None, repr=False, description="HMAC key of the request ids the "
                                       "server issues; replicas that share it accept each other's labels. "
                                       "Defaults to a random key kept (0600) in state_dir.")
    # Labels of a loan arrive when it matures or defaults: months after the answer. A year and a
    # month (9,600 h, monitoring.label_horizon_days's 400 days); the prediction log must be kept as long.
    feedback_max_age_hours: float = Field(default=9600.0, gt=0, description="Labels are accepted for request ids "
                                          "issued at most this long ago (keep the prediction log as long).")
    log_dir: str | Path | None = Field(default=None, description="Prediction and feedback logs: a directory or "
                                "s3://BUCKET/PREFIX; defaults to state_dir")
    model_threads: int = Field(default=1, ge=1, description="OpenMP threads per worker for the model.")
    log_predictions: bool = Field(default=True, description="Write the prediction log (the monitor needs it).")
    keep_previous: bool = Field(default=True, description="Keep @previous loaded: a rollback is then a swap.")
    role: Literal["production", "staging"] = Field(
        default="production", description="'staging' serves @challenger alone (as this server's champion): the "
        "rollout tests a challenger there over HTTP before production traffic (rollout.staging).")
    unknown_category: Literal["allow", "reject"] = Field(
        default="allow", description="A category the model never saw: 'allow' predicts with it as missing (and "
        "the drift monitor sees it in the log); 'reject' answers 422 naming the field.")
    unknown_fields: Literal["reject", "drop"] = Field(
        default="reject", description="A record key that is no model input: 'reject' answers 422 naming it; "
        "'drop' ignores it. Never logged either way.")
    out_of_range: Literal["allow", "reject"] = Field(
        default="allow", description="A number outside its data.features min/max: 'allow' predicts and names "
        "the field in the log row's `out_of_range`; 'reject' answers 422 naming the field.")

    @field_validator("url", "token", "feedback_token", "metrics_token", "request_id_key")
    @classmethod
    def _not_blank(cls, value: str | None, info) -> str | None:
        # An empty DRIFTLINE_SERVE_TOKEN is a mistake (a missing secret), never "auth off": unset it instead.
        if value is not None and not value.strip():
            raise ValueError(f"DRIFTLINE_SERVE_{info.field_name.upper()} is set but empty; unset it or give a value")
        if info.field_name == "request_id_key" and value is not None and len(value) < 16:
            raise ValueError("DRIFTLINE_SERVE_REQUEST_ID_KEY must have at least 16 characters")
        return value

    @model_validator(mode="after")
    def _credentials_apart(self) -> ServeSettings:
        # One credential per role: a predict client that also held the label token could label a
        # canary's arms as it liked; Prometheus holding it could too.
        if self.feedback_token is not None and self.feedback_token in (self.token, self.metrics_token):
            other = "TOKEN" if self.feedback_token == self.token else "METRICS_TOKEN"
            raise ValueError(f"DRIFTLINE_SERVE_FEEDBACK_TOKEN must differ from DRIFTLINE_SERVE_{other}: "
                             "the label credential is held by the labelling system alone")
        return self

    @property
    def closed(self) -> bool:
        """The server holds a credential: the rollout is shown only to callers presenting one."""
        return any((self.token, self.feedback_token, self.metrics_token))

    @property
    def address(self) -> str:
        """The one address of the model server for its clients."""
        return self.url or f"http://{self.host}:{self.port}"

    @property
    def servers(self) -> list[str]:
        """Every production server a rollout's or rollback's outcome is checked on."""
        return [a.strip().rstrip("/") for a in self.replicas.split(",") if a.strip()] if self.replicas \
            else [self.address]

    def logs(self, settings: Settings) -> str | Path:
        """Where the prediction and feedback logs live: the server writes there, the flows read."""
        return self.log_dir or settings.state


def serve_settings(state: Path) -> ServeSettings:
    """The model server's settings as a process on the state directory `state` reads them: the
    environment, then the credentials a stack keeps in `<state>/secrets`."""
    secrets = state / SECRETS_DIR
    return ServeSettings(_secrets_dir=secrets) if secrets.is_dir() else ServeSettings()


class Settings(BaseSettings):
    """Where things live. Every field reads `DRIFTLINE_<NAME>` from the environment."""

    model_config = SettingsConfigDict(env_prefix="DRIFTLINE_", frozen=True, extra="ignore")

    project_dir: Path = Field(default_factory=Path.cwd)
    state_dir: Path | None = Field(default=None, description="Defaults to <project_dir>/.driftline")
    tracking_uri: str | None = Field(default=None, description="Defaults to a SQLite file in state_dir")
    artifact_location: str | None = Field(default=None, description="Defaults to state_dir/mlartifacts")
    dvc_remote_dir: Path | None = Field(default=None, description="Defaults to state_dir/dvc-remote")
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    prefect_ui_url: str = "http://127.0.0.1:4200"
    staging_url: str | None = Field(default=None, description="The staging model server (`driftline serve "
                                    "--role staging`) that rollout.staging tests a challenger on")
    dask_address: str | None = Field(default=None, description="An existing Dask scheduler (tcp://host:8786) "
                                     "for the hyperparameter search; unset: a temporary local cluster")
    # Nested, but read from its own DRIFTLINE_SERVE_* variables (see ServeSettings).
    serve: ServeSettings = Field(default_factory=lambda: ServeSettings())

    @model_validator(mode="after")
    def _serve_secrets(self) -> Settings:
        """The model server's credentials that `driftline up` made for this state directory (files
        named after their variables, 0600 in `<state>/secrets`), for every driftline process that
        can read them; a variable set in the environment still wins."""
        if "serve" not in self.model_fields_set and (self.state / SECRETS_DIR).is_dir():
            object.__setattr__(self, "serve", serve_settings(self.state))
        return self

    @classmethod
    def for_project(cls, project_dir: str | Path | None) -> Settings:
        """The settings, with the project directory a flow was given instead of the environment's."""
        return cls(project_dir=Path(project_dir)) if project_dir else cls()

    @property
    def root(self) -> Path:
        return self.project_dir.resolve()

    @property
    def state(self) -> Path:
        return (self.state_dir or self.root / ".driftline").resolve()

    @property
    def mlflow_uri(self) -> str:
        # MLflow wants four slashes for an absolute SQLite path.
        return self.tracking_uri or f"sqlite:///{self.state / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> str:
        return self.artifact_location or (self.state / "mlartifacts").as_uri()

    @property
    def remote_dir(self) -> Path:
        return (self.dvc_remote_dir or self.state / "dvc-remote").resolve()
