"""Where things live: `DRIFTLINE_*` environment variables (addresses and credentials never go in params.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    poll_seconds: float = Field(default=3.0, gt=0, description="How often the registry is read.")
    max_batch: int = Field(default=64, ge=1, description="Rows per batched predict call.")
    max_wait_ms: float = Field(default=5.0, ge=0, description="How long a request waits for company.")
    max_body_bytes: int = Field(default=1_000_000, ge=1024)
    max_records: int = Field(default=10_000, ge=1, description="Records per request (or labels per /feedback).")
    body_timeout_seconds: float = Field(default=10.0, gt=0, description="A body not received whole within this "
                                        "is answered 408 (uvicorn has no body read timeout of its own).")
    max_pending_requests: int = Field(default=1024, ge=1, description="Requests waiting for a predict call; "
                                      "beyond it 503 with Retry-After.")
    max_log_backlog_rows: int = Field(default=100_000, ge=1, description="Log rows not yet written; beyond it "
                                      "503 with Retry-After rather than growing memory.")
    token: str | None = Field(default=None, repr=False, description="Bearer token for /predict and /feedback.")
    feedback_token: str | None = Field(default=None, repr=False, description="Bearer token for /feedback "
                                       "(labels usually come from another system); defaults to `token`.")
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

    @field_validator("url", "token", "feedback_token", "request_id_key")
    @classmethod
    def _not_blank(cls, value: str | None, info) -> str | None:
        # An empty DRIFTLINE_SERVE_TOKEN is a mistake (a missing secret), never "auth off": unset it instead.
        if value is not None and not value.strip():
            raise ValueError(f"DRIFTLINE_SERVE_{info.field_name.upper()} is set but empty; unset it or give a value")
        if info.field_name == "request_id_key" and value is not None and len(value) < 16:
            raise ValueError("DRIFTLINE_SERVE_REQUEST_ID_KEY must have at least 16 characters")
        return value

    @property
    def address(self) -> str:
        """The one address of the model server for its clients."""
        return self.url or f"http://{self.host}:{self.port}"

    def logs(self, settings: Settings) -> str | Path:
        """Where the prediction and feedback logs live: the server writes there, the flows read."""
        return self.log_dir or settings.state


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
