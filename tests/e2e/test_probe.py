"""`reconciler probe`: reads only, reports each answer's shape, never a value or a secret."""

from __future__ import annotations

import pytest

from reconciler.sandbox.runtime import InProcessSandbox
from tests.e2e.conftest import EXAMPLES
from tests.e2e.reliability import providers_with_examples

SANDBOX_SECRETS = ("sandbox-yext-api-key", "sandbox-admanager-authtoken",
                   "sandbox-licensespring-shared-key", "sandbox-uipath-host-password",
                   "sandbox-commvault-password", "sandbox-uipath-app-secret")


def _licenses(state: dict[str, object]) -> dict[str, object]:
    """The vendor's state without its login sessions (a probe logs in, as a plan does)."""
    return {key: value for key, value in state.items() if key not in {"sessions", "tokens"}}


@pytest.mark.parametrize("provider", providers_with_examples())
def test_probe_reports_shapes_and_changes_nothing(provider, workspace, cli):
    sandbox = InProcessSandbox(workspace / ".reconciler" / "sandbox")
    before = _licenses(sandbox.simulator(provider).state)
    probed = cli("probe", provider, "--sandbox", "--from", str(EXAMPLES / f"{provider}.yaml"))
    assert probed.exit_code == 0, probed.output
    answers = [line for line in probed.output.splitlines() if " → " in line]
    assert answers and all(" → 200 {" in line for line in answers), probed.output
    assert "read: " in probed.output
    after = InProcessSandbox(workspace / ".reconciler" / "sandbox").simulator(provider).state
    assert _licenses(after) == before
    assert not any(secret in probed.output for secret in SANDBOX_SECRETS)


def test_probe_of_an_unknown_provider_is_a_clear_error(workspace, cli):
    refused = cli("probe", "nosuch", "--sandbox")
    assert refused.exit_code == 1 and "unknown provider 'nosuch'" in refused.output
