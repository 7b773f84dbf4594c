"""LicenseSpring provider: device activations (License API v4) read in bulk (Management API).

`provider` holds the provider; `facts` what a read knows; `signing` the License API's
HMAC headers. Reads reach the Management API's host through the core's per-host
clients (`reconciler.hosts`).
"""

from reconciler.providers.licensespring.facts import (
    LicenseFacts,
    LicenseSpringFacts,
    license_names,
    license_users,
    parse_license,
)
from reconciler.providers.licensespring.provider import (
    LicenseSpringConnection,
    LicenseSpringProvider,
    describe,
    facts_of,
)
from reconciler.providers.licensespring.signing import sign, signed_headers

__all__ = [
    "LicenseFacts",
    "LicenseSpringConnection",
    "LicenseSpringFacts",
    "LicenseSpringProvider",
    "describe",
    "facts_of",
    "license_names",
    "license_users",
    "parse_license",
    "sign",
    "signed_headers",
]
