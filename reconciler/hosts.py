"""A provider's HTTP clients: one `VendorHttp` per host it is configured to reach.

Most vendors serve everything at one base URL, the provider's `http`. Some serve
another API on another host (LicenseSpring: changes on `api.licensespring.com`, bulk
reads on `saas.licensespring.com`). A `Call` holds no host, so such a provider asks
`hosts.at(base_url)` for that host's own `VendorHttp`: made by the session with the
same limits and the same transport (network or sandbox) as the first, and closed with
the session. Each host keeps its own connection pool, rate limit, concurrency and
retry counters, because a vendor's limits are per API host; each call's retry budget
is its own wherever it goes. The same base URL always gets the same client, and the
provider's own base URL gets `http` itself.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from reconciler.errors import VendorError
from reconciler.http import VendorHttp

HttpFactory = Callable[[str], VendorHttp]
"""Makes the `VendorHttp` for one more base URL (the session knows limits and transport)."""


def _key(base_url: str | httpx.URL) -> str:
    return str(httpx.URL(str(base_url))).rstrip("/")


class Hosts:
    """The provider's `VendorHttp` per base URL; the extra ones are closed by `aclose`."""

    def __init__(self, primary: VendorHttp, make: HttpFactory | None = None) -> None:
        self.primary = primary
        self._make = make
        self._others: dict[str, VendorHttp] = {}

    def at(self, base_url: str) -> VendorHttp:
        """The client for `base_url`, made on first use."""
        key = _key(base_url)
        if key == _key(self.primary.client.base_url):
            return self.primary
        found = self._others.get(key)
        if found is None:
            if self._make is None:
                raise VendorError(f"no HTTP client for {key}: this provider was given a "
                                  f"client for {_key(self.primary.client.base_url)} only")
            found = self._make(key)
            # Waits are slept, and answers observed (`reconciler probe`'s response hooks),
            # the same way on every host of a vendor.
            found.sleep, found.clock = self.primary.sleep, self.primary.clock
            found.client.event_hooks = self.primary.client.event_hooks
            self._others[key] = found
        return found

    def opened(self) -> list[VendorHttp]:
        """Every client in use: the primary first, then one per other host."""
        return [self.primary, *self._others.values()]

    async def aclose(self) -> None:
        """Closes the clients made here (the primary's belongs to whoever made it)."""
        others, self._others = list(self._others.values()), {}
        for http in others:
            await http.client.aclose()
