"""DRIFTLINE_* settings: the model server is one nested section with one derived address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftline.config import ServeSettings, Settings


@pytest.fixture(autouse=True)
def _no_serve_environment(monkeypatch):
    for name in ("URL", "HOST", "PORT", "TOKEN", "FEEDBACK_TOKEN", "METRICS_TOKEN"):
        monkeypatch.delenv(f"DRIFTLINE_SERVE_{name}", raising=False)


def test_the_serve_address_is_derived_from_host_and_port(monkeypatch, tmp_path):
    assert Settings(project_dir=tmp_path).serve.address == "http://127.0.0.1:8080"
    monkeypatch.setenv("DRIFTLINE_SERVE_HOST", "10.0.0.7")
    monkeypatch.setenv("DRIFTLINE_SERVE_PORT", "9001")
    settings = Settings(project_dir=tmp_path)
    assert (settings.serve.host, settings.serve.port) == ("10.0.0.7", 9001)
    assert settings.serve.address == "http://10.0.0.7:9001"


def test_an_explicit_serve_url_wins_over_host_and_port(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIFTLINE_SERVE_PORT", "9001")
    monkeypatch.setenv("DRIFTLINE_SERVE_URL", "https://models.internal")
    serve = Settings.for_project(tmp_path).serve
    assert serve.address == "https://models.internal"
    assert serve.port == 9001  # still where a server started here listens


def test_the_serve_section_is_the_only_place_for_the_address():
    assert "serve_url" not in Settings.model_fields
    assert ServeSettings(port=7000, url=None).address == "http://127.0.0.1:7000"


def test_an_empty_serve_url_is_a_mistake_not_a_default(monkeypatch, tmp_path):
    monkeypatch.setenv("DRIFTLINE_SERVE_URL", " ")
    with pytest.raises(ValidationError, match="DRIFTLINE_SERVE_URL is set but empty"):
        Settings(project_dir=tmp_path)


def test_the_label_credential_is_its_own(monkeypatch):
    with pytest.raises(ValidationError, match="DRIFTLINE_SERVE_FEEDBACK_TOKEN must differ from DRIFTLINE_SERVE_TOKEN"):
        ServeSettings(token="same-secret", feedback_token="same-secret")
    with pytest.raises(ValidationError, match="must differ from DRIFTLINE_SERVE_METRICS_TOKEN"):
        ServeSettings(metrics_token="same-secret", feedback_token="same-secret")
    assert not ServeSettings().closed and ServeSettings(metrics_token="m").closed


def test_the_tokens_a_stack_made_are_read_from_its_state_and_the_environment_wins(monkeypatch, tmp_path):
    from driftline.app.credentials import LABEL_TOKEN, METRICS_TOKEN, serve_credentials

    state = tmp_path / "state"
    assert Settings(project_dir=tmp_path, state_dir=state).serve.feedback_token is None
    made = serve_credentials(state, {METRICS_TOKEN: "from-the-environment"})
    assert list(made) == [LABEL_TOKEN]  # a token the environment gives is not made
    assert oct(made[LABEL_TOKEN].stat().st_mode & 0o777) == "0o600"
    assert oct((state / "secrets").stat().st_mode & 0o777) == "0o700"
    label = made[LABEL_TOKEN].read_text().strip()
    assert len(label) >= 32 and serve_credentials(state, {})[LABEL_TOKEN].read_text().strip() == label  # made once
    assert Settings(project_dir=tmp_path, state_dir=state).serve.feedback_token == label
    monkeypatch.setenv(LABEL_TOKEN, "the-operators-own")
    assert Settings(project_dir=tmp_path, state_dir=state).serve.feedback_token == "the-operators-own"


@pytest.mark.parametrize(("host", "token", "public", "refused"), [
    ("127.0.0.1", None, False, False), ("::1", None, False, False), ("localhost", None, False, False),
    ("0.0.0.0", None, False, True), ("models.internal", None, False, True),
    ("0.0.0.0", "predict-token", False, False), ("0.0.0.0", None, True, False),
])
def test_listening_beyond_loopback_needs_a_token_or_an_explicit_yes(host, token, public, refused):
    from driftline.serving.server import exposed

    reason = exposed(ServeSettings(host=host, token=token, public_without_token=public))
    assert (reason is not None) is refused
    if refused:
        assert "DRIFTLINE_SERVE_TOKEN" in reason and "DRIFTLINE_SERVE_PUBLIC_WITHOUT_TOKEN" in reason
