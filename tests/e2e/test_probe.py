"""`reconciler probe`: reading only, answers' shapes, no secret, on every vendor, is a
property of the conformance kit (tests/e2e/test_conformance.py)."""

from __future__ import annotations


def test_probe_of_an_unknown_provider_is_a_clear_error(workspace, cli):
    refused = cli("probe", "nosuch", "--sandbox")
    assert refused.exit_code == 1 and "unknown provider 'nosuch'" in refused.output
