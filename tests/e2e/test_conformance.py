"""The built-in vendors held to the conformance kit (`reconciler.testing`), through the
same code a vendor package runs: the properties are written once, there."""

import random

from reconciler.testing.crash import Estate
from reconciler.testing.kit import *  # noqa: F403  (the kit's tests and fixtures)
from reconciler.testing.vendor import vendors_with_examples
from tests.e2e.conftest import EXAMPLES
from tests.e2e.crash_estates import estate

CONFORMANCE_EXAMPLES = EXAMPLES
CONFORMANCE_PROVIDERS = [p for p in vendors_with_examples(EXAMPLES)
                         if p in {"admanager", "commvault", "licensespring", "uipath", "yext"}]
"""The built-in five; a vendor package runs the kit in its own suite."""
# Their contract fixtures predate the kit's format and keep their richer per-vendor
# tests (tests/providers/test_*_contract.py), which check the provider side as well:
# the kit's fixture property is not collected here (rather than collected as a skip).
del test_kit_contract_fixtures  # noqa: F821


def CONFORMANCE_CRASH_ESTATE(provider: str) -> Estate:
    """The built-ins are killed in estates ~300 changes away (benchmark scenarios)."""
    return estate(provider, random.Random(7))
