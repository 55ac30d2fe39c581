"""DRIFTLINE_* settings: the model server is one nested section with one derived address."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from driftline.config import ServeSettings, Settings


@pytest.fixture(autouse=True)
def _no_serve_environment(monkeypatch):
    for name in ("URL", "HOST", "PORT", "TOKEN"):
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
