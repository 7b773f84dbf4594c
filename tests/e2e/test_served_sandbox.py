"""`reconciler sandbox serve` serves the simulators over real HTTP on loopback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.e2e.conftest import copy_example, served_exports


def test_served_sandbox_exports_an_environment_that_plan_uses_over_http(workspace, cli):
    desired = copy_example(workspace, "yext.yaml")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reconciler.cli",
            "sandbox",
            "serve",
            str(desired),
            "--env-file",
            "sandbox.env",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=workspace,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        exports = served_exports(server.stdout)
        assert exports["YEXT_BASE_URL"].startswith("http://127.0.0.1:")
        assert exports["YEXT_API_KEY"] == "sandbox-yext-api-key"
        assert (workspace / "sandbox.env").read_text().count("export ") == len(exports)
        result = cli("plan", str(desired), "--detailed-exitcode", env=exports)
        assert result.exit_code == 2, result.output
        assert (
            f"DELETE {exports['YEXT_BASE_URL']}/v2/accounts/me/license-packs"
            in cli("apply", str(desired), "--dry-run", env=exports).output
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
