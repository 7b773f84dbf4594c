"""`reconciler sandbox serve` serves the simulators over real HTTP on loopback."""

from __future__ import annotations

from reconciler.testing.served import served_sandbox
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
