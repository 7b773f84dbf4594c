"""The Microsoft 365 package held to the whole conformance kit, as any vendor package is."""

from reconciler.testing.kit import *  # noqa: F403  (the kit's tests and fixtures)

CONFORMANCE_PROVIDERS = ["msgraph"]
