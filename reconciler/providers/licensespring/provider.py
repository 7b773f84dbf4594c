"""LicenseSpring: which devices hold an activation of which license.

A license is the pool (capacity: its max activations); a device (hardware id)
holds a seat while its activation is active. Adding a device plans an `assign`
(activate_license); dropping one plans a `release` (deactivate_license), which runs
first so that decommissioned machines free their seats before new ones take them.

Reads use the Management API in bulk (licenses, then devices, paged at its maximum
of 100), never one check_license per device. Changes use the License API, signed at
send time (see `signing`).

Filters are spelled as the references spell them, because the server ignores a filter
it does not know and answers the unfiltered list: licences by `product_short_code`
(List Licenses page), devices by `license` / `hardware_id` (LicenseSpring's Postman
collection documents `license`, `blacklisted`, `hostname`, `hardware_id` and no
activity filter). Devices are therefore listed account-wide and an activation counts
while the device object's own `device_active` field is true (the field the Retrieve
License Activation History page documents); a deactivated device stays in the list.

Hosts: the License API at `base_url_env` (default https://api.licensespring.com), the
Management API at `management_url_env` (default https://saas.licensespring.com); both
are hosts, the `/api/v4` and `/api/v1` prefixes are path segments added here.

YAML names a key-based license by its license key, a user-based one as
`<product short code>/<license user>` (see `license_names`). A user-based license is
activated and deactivated as one of its users; `connection.user_passwords` maps
usernames to the environment variables holding their passwords.

Hardware ids never go into a URL path: they travel in JSON bodies (changes) and
query strings (confirm), so any id the loader accepts names at worst a device that
does not exist.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import Field

from reconciler.errors import Problem, VendorError
from reconciler.http import VendorHttp, json_object
from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    CurrentState,
    Grant,
    Outcome,
    OutcomeStatus,
    PoolState,
    ProviderDesired,
    Subject,
)
from reconciler.offloop import off_loop
from reconciler.providers.base import (
    PHASE_FREE,
    PHASE_TAKE,
    Connection,
    Provider,
    fingerprint,
)
from reconciler.providers.licensespring.facts import (
    LicenseFacts,
    LicenseSpringFacts,
    license_names,
    parse_license,
)
from reconciler.providers.licensespring.signing import signed_headers

PAGE = 100
DEFAULT_MANAGEMENT_URL = "https://saas.licensespring.com"
LICENSE_API = ("api", "v4")
MANAGEMENT_API = ("api", "v1")
ALREADY_RELEASED = ("device_not_found",)
PASSWORD_PREVIEW = "***"


class LicenseSpringConnection(Connection):
    """License API (device side) and Management API (reads) settings."""

    base_url_env: str | None = "LICENSESPRING_BASE_URL"
    management_url_env: str | None = None
    api_key_env: str
    shared_key_env: str
    management_key_env: str
    products: tuple[str, ...] = ()
    user_passwords: dict[str, str] = Field(default_factory=dict)


def facts_of(current: CurrentState) -> LicenseSpringFacts:
    """The typed facts `read` put into `current` (empty when built without a read)."""
    facts = current.facts
    return facts if isinstance(facts, LicenseSpringFacts) else LicenseSpringFacts()


class LicenseSpringProvider(Provider):
    id = "licensespring"
    connection_model = LicenseSpringConnection
    default_base_url = "https://api.licensespring.com"
    subject_kinds = frozenset({"device"})
    # No path_kinds: hardware ids go in JSON bodies and query strings, never in a path.

    connection: LicenseSpringConnection

    # ---- Management API (reads) ------------------------------------------------------------
    def _management(self) -> VendorHttp:
        """The Management API host's own client (`reconciler.hosts`): its own limits and
        counters, closed with the session."""
        base = self.secrets.optional(self.connection.management_url_env, DEFAULT_MANAGEMENT_URL)
        return self.hosts.at(base)

    async def _pages(self, listing: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """A whole list: the first page tells the count, the other pages come concurrently
        (offset paging needs no token from the page before)."""
        first = await self._page(listing, params, 0)
        offsets = range(PAGE, int(first.get("count", 0)), PAGE)
        rest = await asyncio.gather(*(self._page(listing, params, o) for o in offsets))
        return [row for page in (first, *rest) for row in page.get("results", [])]

    async def _page(self, listing: str, params: dict[str, str], offset: int) -> dict[str, Any]:
        call = Call.to("GET", *MANAGEMENT_API, listing, "",
                       query={**params, "limit": str(PAGE), "offset": str(offset)})
        key = self.secrets.get(self.connection.management_key_env)
        response = await self._management().send(
            call, repeatable=True, headers={"Authorization": f"Api-Key {key}"})
        page = json_object(response) if response.is_success else {}
        if not response.is_success or not isinstance(page.get("results"), list):
            raise VendorError(f"LicenseSpring Management API GET /{listing}/: "
                              f"{describe(response)}", status=response.status_code)
        return page

    # ---- facts ---------------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        filters = [{"product_short_code": p} for p in self.connection.products] or [{}]
        devices, *lists = await asyncio.gather(
            self._pages("devices", {}),
            *(self._pages("licenses", f) for f in filters))
        return await off_loop(self._state, devices, lists)

    def _state(self, devices: list[dict[str, Any]],
               lists: list[list[dict[str, Any]]]) -> CurrentState:
        """The state the device and license rows describe (built off the event loop)."""
        rows = license_names(row for listed in lists for row in listed)
        try:
            licenses = {name: parse_license(row) for name, row in rows.items()}
        except (KeyError, TypeError, ValueError) as error:
            raise VendorError(f"LicenseSpring Management API: a license row without "
                              f"a usable {error}") from None
        by_id = {lic.id: name for name, lic in licenses.items()}
        holders: dict[str, list[str]] = defaultdict(list)
        for device in devices:
            license_id = _int(device.get("license"))
            name = by_id.get(license_id) if license_id is not None else None
            if name is not None and device.get("device_active"):
                holders[name].append(str(device["hardware_id"]))
        grants = [Grant(provider=self.id, pool=name, license=name,
                        subject=Subject(kind="device", id=hardware_id))
                  for name, hardware_ids in holders.items() for hardware_id in hardware_ids]
        pools = [PoolState(provider=self.id, id=name, name=lic.product,
                           used=len(holders.get(name, [])), capacity=lic.capacity)
                 for name, lic in sorted(licenses.items())]
        fingerprints = {name: fingerprint({"devices": sorted(holders.get(name, [])),
                                           "capacity": lic.capacity, "enabled": lic.enabled})
                        for name, lic in licenses.items()}
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints,
                            facts=LicenseSpringFacts(licenses=licenses))

    def check(self, desired: ProviderDesired, current: CurrentState,
              changes: Sequence[Change]) -> list[Problem]:
        """Activations the vendor would refuse, refused before any call: a disabled or
        expired license, one not started yet, a user-based one with no password."""
        licenses = facts_of(current).licenses
        problems = []
        held = {g.key for g in current.grants}
        today = dt.date.today().isoformat()
        for grant in desired.grants:
            lic = licenses.get(grant.license)
            if lic is None or grant.key in held:
                continue
            why = None
            if not lic.enabled:
                why = "is disabled"
            elif lic.validity_period and lic.validity_period < today:
                why = f"expired on {lic.validity_period}"
            elif lic.start_date and lic.start_date > today:
                why = f"cannot be activated before {lic.start_date}"
            elif lic.user_based and self._user_with_password(lic) is None:
                why = (f"needs a user's password to activate: add one of "
                       f"{', '.join(lic.users) or 'its users'} to connection.user_passwords")
            if why:
                problems.append(Problem(grant.source, f"licensespring: license "
                                                      f"'{grant.license}' {why}"))
        return problems

    # ---- operations ------------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        licenses = facts_of(current).licenses
        return [self._action(change, licenses) for change in changes]

    def _user_with_password(self, lic: LicenseFacts) -> str | None:
        """The first (sorted) of the license's users with a configured password."""
        return next((u for u in lic.users if u in self.connection.user_passwords), None)

    def _action(self, change: Change, licenses: Mapping[str, LicenseFacts]) -> Action:
        grant = change.grant
        lic = licenses.get(grant.license)
        if lic is None:
            raise VendorError(f"LicenseSpring: license '{grant.license}' was not read")
        adding = change.kind is not ChangeKind.REMOVE
        call = Call.to("POST", *LICENSE_API, "activate_license" if adding else
                       "deactivate_license", body=self._body(lic, grant.subject.id))
        shown = call if self._password_variable(call) is None else with_password(
            call, PASSWORD_PREVIEW)
        verb = "assign" if adding else "release"
        return Action(
            id=f"licensespring:{grant.license}:device:{grant.subject.id}:{verb}", verb=verb,
            provider=self.id, pool=grant.pool, subject=grant.subject, license=grant.license,
            phase=PHASE_TAKE if adding else PHASE_FREE, frees=not adding,
            seat_delta=change.seat_delta, reason=change.reason,
            request=self.http.preview(shown), changes=(change,),
            # An activation is not re-sent blindly after a lost answer: `confirm` looks
            # the device up instead (a release is safe to repeat: device_not_found).
            repeatable=not adding, call=call,
        )

    def _body(self, lic: LicenseFacts, hardware_id: str) -> dict[str, Any]:
        """The documented body: `hardware_id`, `product`, then `license_key` (key-based)
        or `username` + `license_id` (user-based; the id pins the license, since one user
        may hold several of a product). The password is never part of it: see `_send`."""
        body: dict[str, Any] = {"hardware_id": hardware_id, "product": lic.product}
        if lic.license_key:
            body["license_key"] = lic.license_key
            return body
        body["username"] = self._user_with_password(lic) or (lic.users[0] if lic.users else "")
        body["license_id"] = lic.id
        return body

    def _password_variable(self, call: Call) -> str | None:
        username = call.body.get("username") if isinstance(call.body, dict) else None
        return self.connection.user_passwords.get(username) if username else None

    async def _send(self, call: Call, *, repeatable: bool) -> httpx.Response:
        """Sends a License API call as planned, signed now (the Date is signed).

        A user-based call also carries the license user's `password` (the vendor's schema
        lists it for activation and deactivation), read from the environment variable
        that `connection.user_passwords` names. A secret never sits in a plan: it goes as
        `secret_body`, merged into the request body at send time only, so the call sent
        (and journaled, and announced) is the planned one. Without a configured password
        a deactivation goes with `username` alone, as the official SDK sends it.
        """
        variable = self._password_variable(call)
        secret = None if variable is None else {"password": self.secrets.get(variable)}
        headers = signed_headers(self.secrets.get(self.connection.api_key_env),
                                 self.secrets.get(self.connection.shared_key_env))
        return await self.http.send(call, repeatable=repeatable, headers=headers,
                                    secret_body=secret)

    async def execute(self, action: Action) -> Outcome:
        response = await self._send(action.call, repeatable=action.repeatable)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        releasing = action.call.path[-1] == "deactivate_license"
        if releasing and error_code(response) in ALREADY_RELEASED:
            return Outcome(status=OutcomeStatus.ALREADY, message="device already deactivated")
        return Outcome(status=OutcomeStatus.FAILED, message=f"LicenseSpring {describe(response)}")

    async def confirm(self, action: Action) -> bool | None:
        """Looks the device's activation up on the Management API: True when the action's
        effect (active after an activation, inactive after a deactivation) is visible."""
        body = action.call.body if isinstance(action.call.body, dict) else {}
        hardware_id = action.subject.id
        license_id = _int(body.get("license_id"))
        if license_id is None and body.get("license_key"):
            found = await self._pages("licenses", {"license_key": str(body["license_key"]),
                                                   "product_short_code": str(body["product"])})
            license_id = next((_int(row.get("id")) for row in found
                               if row.get("license_key") == body["license_key"]), None)
        active = False
        if license_id is not None:
            devices = await self._pages("devices", {"license": str(license_id),
                                                    "hardware_id": hardware_id})
            active = any(d.get("device_active") and str(d.get("hardware_id")) == hardware_id
                         and _int(d.get("license")) == license_id for d in devices)
        return active if action.call.path[-1] == "activate_license" else not active


def with_password(call: Call, password: str) -> Call:
    """`call` with the password's mask in its body, for the plan's preview (the secret
    itself is added by the HTTP layer at send time: `_send`)."""
    return call.model_copy(update={"body": {**call.body, "password": password}})


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def error_code(response: httpx.Response) -> str | None:
    code = json_object(response).get("code")
    return str(code) if code else None


def describe(response: httpx.Response) -> str:
    """The vendor's code and message with the HTTP status; never `None`."""
    data = json_object(response)
    if data.get("code"):
        return f"{data['code']}: {data.get('message', '')} (HTTP {response.status_code})"
    detail = data.get("detail") or response.text[:200].strip()
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
