"""`driftline serve --host/--port`, as uvicorn and `prefect server start` take them: a port out of
range is refused before anything starts, naming the option."""

from __future__ import annotations

from typer.testing import CliRunner

from driftline.app.cli import app


def test_a_port_out_of_range_is_refused_naming_the_option():
    result = CliRunner().invoke(app, ["serve", "--port", "70000"], terminal_width=200)
    said = " ".join(result.output.replace("│", " ").split())
    assert result.exit_code == 2
    assert "Invalid value for '--port': Input should be less than or equal to 65535" in said, said


def test_the_options_are_listed_with_their_environment_defaults():
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "--host" in result.output and "DRIFTLINE_SERVE_HOST" in result.output
    assert "--port" in result.output and "DRIFTLINE_SERVE_PORT" in result.output
