"""The official LicenseSpring SDK against `reconciler sandbox serve`, as a user runs it.

The exports `serve` prints are all the SDK needs: with them it activates, checks and
deactivates, and gets the vendor's JSON errors (`ClientError`) for a wrong key or an
unknown path; `reconciler drift`, pointed at the same server, sees what it changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.testing.served import served_sandbox
from tests.e2e.conftest import copy_example

KEY = "ACAD-7H2K-99QX-4M1P"


@pytest.fixture
def served(workspace: Path) -> Iterator[dict[str, str]]:
    copy_example(workspace, "licensespring.yaml")
    with served_sandbox("desired", workspace) as served:
        yield served.exports


def test_official_sdk_against_sandbox_serve(served: dict[str, str], workspace: Path):
    from licensespring.api import APIClient
    from licensespring.api.error import ClientError

    domain = served["LICENSESPRING_BASE_URL"].removeprefix("http://")
    sdk = APIClient(api_key=served["LICENSESPRING_API_KEY"],
                    shared_key=served["LICENSESPRING_SHARED_KEY"], api_protocol="http",
                    api_domain=domain, verify_license_signature=False)
    def drift() -> str:
        result = CliRunner().invoke(main, ["drift", "desired"], env=served)
        assert result.exit_code == 2, result.output  # the example differs from the seed
        return result.output

    assert "device:ws-design-01" not in drift()
    # The SDK frees ws-design-01's seat behind reconciler's back: drift sees it.
    assert sdk.deactivate_license(product="acmecad", hardware_id="ws-design-01",
                                  license_key=KEY) == "license_deactivated"
    assert "+ assign   licensespring/ACAD-7H2K-99QX-4M1P  device:ws-design-01" in drift()
    activated = sdk.activate_license(product="acmecad", hardware_id="ws-design-01",
                                     license_key=KEY)
    assert activated["license_key"] == KEY
    assert "device:ws-design-01" not in drift()
    wrong = APIClient(api_key="not-a-key", shared_key=served["LICENSESPRING_SHARED_KEY"],
                      api_protocol="http", api_domain=domain, verify_license_signature=False)
    with pytest.raises(ClientError) as refused:
        wrong.check_license(product="acmecad", hardware_id="ws-sdk", license_key=KEY)
    assert refused.value.code == "invalid_api_key"
    with pytest.raises(ClientError) as missing:
        sdk.send_request(method="post", endpoint="/no_such_endpoint", json_data={})
    assert (missing.value.status, missing.value.code) == (404, "not_found")
