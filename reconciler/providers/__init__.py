"""One module per vendor; `registry()` lists them by provider id."""

from __future__ import annotations

from reconciler.providers.base import Provider


def registry() -> dict[str, type[Provider]]:
    """Provider id → provider class."""
    from reconciler.providers.admanager import ADManagerProvider
    from reconciler.providers.commvault import CommvaultProvider
    from reconciler.providers.licensespring import LicenseSpringProvider
    from reconciler.providers.uipath import UiPathProvider
    from reconciler.providers.yext import YextProvider

    found: dict[str, type[Provider]] = {
        "admanager": ADManagerProvider,
        "commvault": CommvaultProvider,
        "licensespring": LicenseSpringProvider,
        "uipath": UiPathProvider,
        "yext": YextProvider,
    }
    return found
