"""Which simulator stands in for which provider id.

The ids are the only thing simulators and providers share: a simulator never
imports provider code (see DESIGN.md, "The sandbox").
"""

from __future__ import annotations

from reconciler.sandbox.base import Simulator


def simulators() -> dict[str, type[Simulator]]:
    """Provider id → simulator class, for every vendor the sandbox covers."""
    from reconciler.sandbox.admanager import ADManagerSimulator
    from reconciler.sandbox.commvault import CommvaultSimulator
    from reconciler.sandbox.licensespring import LicenseSpringSimulator
    from reconciler.sandbox.uipath import UiPathSimulator
    from reconciler.sandbox.yext import YextSimulator

    found: dict[str, type[Simulator]] = {
        "admanager": ADManagerSimulator,
        "commvault": CommvaultSimulator,
        "licensespring": LicenseSpringSimulator,
        "uipath": UiPathSimulator,
        "yext": YextSimulator,
    }
    return found
