"""Limits and base URLs from the YAML and the environment: config errors, never tracebacks."""

from __future__ import annotations

from pathlib import Path

YEXT = """\
providers:
  yext:
    connection:
      api_key_env: YEXT_API_KEY
      base_url_env: YEXT_BASE_URL
{limits}    subjects:
      - entity: store-001
        licenses: [knowledge-pro]
"""


def write(workspace: Path, limits: str = "") -> str:
    (workspace / "desired").mkdir(exist_ok=True)
    (workspace / "desired" / "yext.yaml").write_text(YEXT.format(limits=limits))
    return "desired"


def test_a_malformed_base_url_is_a_config_error_at_the_connection_block(workspace, cli):
    path = write(workspace)
    result = cli("plan", path, env={"YEXT_API_KEY": "k-1234", "YEXT_BASE_URL": "http://[::1"})
    assert result.exit_code == 1
    assert "desired/yext.yaml:3: yext: connection.base_url_env: YEXT_BASE_URL=" in result.stderr
    assert "is not a valid URL" in result.stderr
    assert "Traceback" not in result.output


def test_a_base_url_without_http_is_refused_before_any_call(workspace, cli):
    path = write(workspace)
    result = cli("plan", path, env={"YEXT_API_KEY": "k-1234", "YEXT_BASE_URL": "api.yext.test"})
    assert result.exit_code == 1
    assert "must start with http:// or https://" in result.stderr


def test_the_password_in_a_base_url_is_masked_in_the_error(workspace, cli):
    path = write(workspace)
    url = "https://ops:hunter2-pw@[::1"
    result = cli("plan", path, env={"YEXT_API_KEY": "k-1234", "YEXT_BASE_URL": url})
    assert result.exit_code == 1
    assert "https://ops:***@" in result.stderr
    assert "hunter2" not in result.output


def test_a_fractional_rate_limit_plans_without_a_traceback(workspace, cli):
    """`rate_limit: 0.5` crashed in aiolimiter; now it is one call every two seconds."""
    path = write(workspace, limits="    limits:\n      rate_limit: 0.5\n")
    result = cli("plan", path, "--sandbox")
    assert result.exit_code == 0, result.output
    assert "Plan:" in result.stdout
