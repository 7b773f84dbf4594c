"""`reconciler sandbox serve` serves the simulators over real HTTP on loopback."""

from __future__ import annotations

import pytest

from reconciler.testing.served import SandboxDidNotStart, served_sandbox
from tests.e2e.conftest import copy_example


def test_served_sandbox_exports_an_environment_that_plan_uses_over_http(workspace, cli):
    desired = copy_example(workspace, "yext.yaml")
    with served_sandbox(desired, workspace, "--env-file", "sandbox.env") as served:
        exports = served.exports
        assert exports["YEXT_BASE_URL"].startswith("http://127.0.0.1:")
        assert exports["YEXT_API_KEY"] == "sandbox-yext-api-key"
        assert (workspace / "sandbox.env").read_text().count("export ") == len(exports)
        result = cli("plan", str(desired), "--detailed-exitcode", env=exports)
        assert result.exit_code == 2, result.output
        assert (
            f"DELETE {exports['YEXT_BASE_URL']}/v2/accounts/me/license-packs"
            in cli("apply", str(desired), "--dry-run", env=exports).output
        )


def test_a_sandbox_that_cannot_start_says_why(workspace):
    """The kit helper reports the command's own error, not a missing export later."""
    with pytest.raises(SandboxDidNotStart, match=r"nowhere:1: no such file or directory"), \
            served_sandbox("nowhere", workspace):
        pass  # pragma: no cover - never reached: the sandbox did not start
