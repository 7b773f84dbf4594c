"""LicenseSpring: which devices hold an activation of which license.

A license is the pool (capacity: its max activations); a device (hardware id)
holds a seat while its activation is active. Adding a device plans an `assign`
(activate_license); dropping one plans a `release` (deactivate_license), which runs
first so that decommissioned machines free their seats before new ones take them.

Reads use the Management API in bulk (licenses, then active devices, paged at its
maximum of 100), never one check_license per device. Changes use the License API,
signed exactly as the vendor documents and the official SDK implements:
`Date` (RFC 7231) and an `hmac-sha256` signature over `licenseSpring\\ndate: <Date>`.

Hosts: the License API at `base_url_env` (default https://api.licensespring.com), the
Management API at `management_url_env` (default https://saas.licensespring.com); both
are hosts, the `/api/v4` and `/api/v1` prefixes are added here.

YAML names a key-based license by its license key, a user-based one as
`<product short code>/<license user>` (see `license_names`). Activating a user-based
license needs a user's password: `connection.user_passwords` maps usernames to the
environment variables holding them.

What can go wrong: every action is built from the plan's own params (no state from an
earlier read), so a saved plan is applied exactly as reviewed; an activation whose
answer was lost is never re-sent blindly (`repeatable=False`): crash recovery asks the
Management API (`confirm`) instead.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable, Sequence
from email.utils import formatdate
from typing import Any

import httpx
from pydantic import Field

from reconciler.errors import Problem, VendorError
from reconciler.http import RequestSpec, json_object
from reconciler.model import (
    Action,
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
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE, Connection, Provider, fingerprint

PAGE = 100
DEFAULT_MANAGEMENT_URL = "https://saas.licensespring.com"
ACTIVATE = "/api/v4/activate_license"
DEACTIVATE = "/api/v4/deactivate_license"
ALREADY_RELEASED = ("device_not_found",)


class LicenseSpringConnection(Connection):
    """License API (device side) and Management API (reads) settings."""

    base_url_env: str | None = "LICENSESPRING_BASE_URL"
    management_url_env: str | None = None
    api_key_env: str
    shared_key_env: str
    management_key_env: str
    products: tuple[str, ...] = ()
    user_passwords: dict[str, str] = Field(default_factory=dict)


def sign(shared_key: str, date: str) -> str:
    """The documented request signature: base64 HMAC-SHA256 of `licenseSpring\\ndate: <Date>`
    keyed with the shared key. The Date is part of what is signed, so every call signs anew."""
    message = f"licenseSpring\ndate: {date}".encode()
    digest = hmac.new(shared_key.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def license_users(row: dict[str, Any]) -> list[str]:
    """A license's users by plain address, sorted. The Management API tags `email`
    (`<address>|<tag>`); `true_email` is the address the user signs in with."""
    users = row.get("license_users") or []
    return sorted(str(u.get("true_email") or str(u.get("email", "")).split("|")[0])
                  for u in users)


def license_names(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """How YAML names each license (the pool id): the one naming rule.

    A key-based license is its license key. A user-based license is
    `<product>/<user>` (`<product>/<user>+<user>` when it has several users), which reads
    naturally and stays apart across products. Should two licenses still share a name
    (one user holding two licenses of one product), each gets `#<license id>` appended.
    """
    named: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("license_key"):
            named[str(row["license_key"])].append(row)
        else:
            users = "+".join(license_users(row)) or f"#{row['id']}"
            named[f"{row['product']['short_code']}/{users}"].append(row)
    names: dict[str, dict[str, Any]] = {}
    for name, found in named.items():
        if len(found) == 1:
            names[name] = found[0]
        else:
            names.update({f"{name}#{row['id']}": row for row in found})
    return names


class LicenseSpringProvider(Provider):
    id = "licensespring"
    connection_model = LicenseSpringConnection
    default_base_url = "https://api.licensespring.com"
    subject_kinds = frozenset({"device"})

    connection: LicenseSpringConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._licenses: dict[str, dict[str, Any]] = {}

    # ---- requests ------------------------------------------------------------------------
    def _management(self, path: str) -> str:
        base = self.secrets.optional(self.connection.management_url_env, DEFAULT_MANAGEMENT_URL)
        return f"{base.rstrip('/')}/api/v1{path}"

    def _signed_headers(self) -> dict[str, str]:
        """The License API's HMAC headers, fresh for every call (the Date is signed)."""
        api_key = self.secrets.get(self.connection.api_key_env)
        date = formatdate(usegmt=True)
        signature = sign(self.secrets.get(self.connection.shared_key_env), date)
        authorization = ",".join([
            'algorithm="hmac-sha256"', 'headers="date"', f'signature="{signature}"',
            f'apiKey="{api_key}"'])
        return {"Date": date, "Authorization": authorization, "Accept": "application/json"}

    async def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """A whole list: the first page tells the count, the other pages come concurrently
        (offset paging needs no token from the page before)."""
        first = await self._page(path, params, 0)
        offsets = range(PAGE, int(first.get("count", 0)), PAGE)
        rest = await asyncio.gather(*(self._page(path, params, o) for o in offsets))
        return [row for page in (first, *rest) for row in page.get("results", [])]

    async def _page(self, path: str, params: dict[str, str], offset: int) -> dict[str, Any]:
        key = self.secrets.get(self.connection.management_key_env)
        spec = RequestSpec("GET", self._management(path),
                           params={**params, "limit": str(PAGE), "offset": str(offset)},
                           headers={"Authorization": f"Api-Key {key}"})
        response = await self.http.send(spec, repeatable=True)
        if not response.is_success:
            raise VendorError(f"LicenseSpring Management API {path}: {_describe(response)}",
                              status=response.status_code)
        page: dict[str, Any] = response.json()
        return page

    # ---- facts ---------------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        filters = [{"product__short_code": p} for p in self.connection.products] or [{}]
        lists = await asyncio.gather(self._pages("/devices/", {"device_active": "true"}),
                                     *(self._pages("/licenses/", f) for f in filters))
        devices = lists[0]
        self._licenses = license_names(row for listed in lists[1:] for row in listed)
        by_id = {row["id"]: name for name, row in self._licenses.items()}
        holders: dict[str, list[str]] = defaultdict(list)
        for device in devices:
            name = by_id.get(device["license"])
            if name is not None and device.get("device_active"):
                holders[name].append(device["hardware_id"])
        grants = [Grant(provider=self.id, pool=name, license=name,
                        subject=Subject(kind="device", id=hardware_id))
                  for name, hardware_ids in holders.items() for hardware_id in hardware_ids]
        pools = [PoolState(provider=self.id, id=name, name=row["product"]["short_code"],
                           used=len(holders.get(name, [])), capacity=_capacity(row))
                 for name, row in sorted(self._licenses.items())]
        fingerprints = {name: fingerprint({"devices": sorted(holders.get(name, [])),
                                           "capacity": _capacity(row),
                                           "enabled": row.get("enabled", True)})
                        for name, row in self._licenses.items()}
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints)

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """Activations the vendor would refuse, refused before any call: a disabled or
        expired license, one not started yet, a user-based one with no password."""
        problems = []
        held = {g.key for g in current.grants}
        today = dt.date.today().isoformat()
        for grant in desired.grants:
            row = self._licenses.get(grant.license)
            if row is None or grant.key in held:
                continue
            why = None
            if not row.get("enabled", True):
                why = "is disabled"
            elif row.get("validity_period") and str(row["validity_period"])[:10] < today:
                why = f"expired on {str(row['validity_period'])[:10]}"
            elif row.get("start_date") and str(row["start_date"])[:10] > today:
                why = f"cannot be activated before {str(row['start_date'])[:10]}"
            elif not row.get("license_key") and self._activating_user(row) is None:
                why = (f"needs a user's password to activate: add one of "
                       f"{', '.join(license_users(row)) or 'its users'} to "
                       "connection.user_passwords")
            if why:
                problems.append(Problem(grant.source, f"licensespring: license "
                                                      f"'{grant.license}' {why}"))
        return problems

    # ---- operations ------------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        return [self._action(change) for change in changes]

    def _activating_user(self, row: dict[str, Any]) -> str | None:
        """The user a user-based license is activated as: the first (sorted) of its users
        with a password in `connection.user_passwords`."""
        return next((u for u in license_users(row) if u in self.connection.user_passwords),
                    None)

    def _identity(self, license: str) -> dict[str, Any]:
        """What names the license in a License API body; user-based ones also pin the
        license id (documented) since a user may hold several licenses of a product."""
        row = self._licenses.get(license)
        if row is None:
            raise VendorError(f"LicenseSpring: license '{license}' was not read")
        identity: dict[str, Any] = {"product": row["product"]["short_code"],
                                    "license_id": row["id"]}
        if row.get("license_key"):
            identity["license_key"] = row["license_key"]
        else:
            users = license_users(row)
            identity["username"] = self._activating_user(row) or (users[0] if users else "")
        return identity

    def _body(self, params: dict[str, Any], *, activate: bool) -> dict[str, Any]:
        """The documented body: `hardware_id`, `product`, then `license_key` (key-based) or
        `username` + `license_id` (+ `password` to activate, as the SDK sends it)."""
        body: dict[str, Any] = {"hardware_id": params["hardware_id"],
                                "product": params["product"]}
        if "license_key" in params:
            body["license_key"] = params["license_key"]
            return body
        body["username"] = params["username"]
        if activate:
            variable = self.connection.user_passwords.get(params["username"])
            if variable is None:
                raise VendorError(f"LicenseSpring: no password for '{params['username']}' "
                                  "in connection.user_passwords")
            body["password"] = self.secrets.get(variable)
        body["license_id"] = params["license_id"]
        return body

    def _action(self, change: Change) -> Action:
        grant = change.grant
        adding = change.kind is not ChangeKind.REMOVE
        endpoint = ACTIVATE if adding else DEACTIVATE
        params = {"endpoint": endpoint, "license": grant.license,
                  "hardware_id": grant.subject.id, **self._identity(grant.license)}
        spec = RequestSpec("POST", endpoint, json=self._body(params, activate=adding))
        verb = "assign" if adding else "release"
        return Action(
            id=f"licensespring:{grant.license}:device:{grant.subject.id}:{verb}", verb=verb,
            provider=self.id, pool=grant.pool, subject=grant.subject, license=grant.license,
            phase=PHASE_TAKE if adding else PHASE_FREE, frees=not adding,
            seat_delta=change.seat_delta, reason=change.reason,
            request=self.http.preview(spec), changes=(change,),
            # An activation is not re-sent blindly after a lost answer: `confirm` looks
            # the device up instead (a release is safe to repeat: device_not_found).
            repeatable=not adding, params=params,
        )

    async def execute(self, action: Action) -> Outcome:
        adding = action.verb == "assign"
        spec = RequestSpec("POST", action.params["endpoint"],
                           json=self._body(action.params, activate=adding),
                           headers=self._signed_headers())
        response = await self.http.send(spec, repeatable=action.repeatable)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        code = _code(response)
        if not adding and code in ALREADY_RELEASED:
            return Outcome(status=OutcomeStatus.ALREADY, message="device already deactivated")
        return Outcome(status=OutcomeStatus.FAILED, message=f"LicenseSpring {_describe(response)}")

    async def confirm(self, action: Action) -> bool | None:
        devices = await self._pages("/devices/", {
            "license": str(action.params["license_id"]), "device_active": "true",
            "hardware_id": action.params["hardware_id"]})
        active = any(d.get("device_active") and d["hardware_id"] == action.params["hardware_id"]
                     for d in devices)
        return active if action.verb == "assign" else not active


def _capacity(row: dict[str, Any]) -> int | None:
    """Max activations, or None (no limit) when the license allows unlimited ones."""
    if row.get("allow_unlimited_activations"):
        return None
    return int(row.get("max_activations") or 0)


def _code(response: httpx.Response) -> str | None:
    code = json_object(response).get("code")
    return str(code) if code else None


def _describe(response: httpx.Response) -> str:
    data = json_object(response)
    if "code" in data:
        return f"{data['code']}: {data.get('message', '')} (HTTP {response.status_code})"
    detail = data.get("detail")
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
