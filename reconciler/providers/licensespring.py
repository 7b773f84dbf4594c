"""LicenseSpring: which devices hold an activation of which license.

A license is the pool (capacity: its max activations); a device (hardware id)
holds a seat while its activation is active. Adding a device plans an `assign`
(activate_license); dropping one plans a `release` (deactivate_license), which runs
first so that decommissioned machines free their seats before new ones take them.

Reads use the Management API in bulk (licenses, then active devices, paged at its
maximum of 100), never one check_license per device. Changes use the License API,
signed exactly as the vendor documents and the official SDK implements:
`Date` (RFC 7231) and an `hmac-sha256` signature over `licenseSpring\\ndate: <Date>`.

YAML: a key-based license is named by its license key; a user-based one as
`user/<username>` (its activation password comes from `connection.user_passwords`,
a map of username → environment variable).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Sequence
from email.utils import formatdate
from typing import Any

import httpx
from pydantic import Field

from reconciler.errors import Problem, VendorError
from reconciler.http import RequestSpec
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
        variable = self.connection.management_url_env
        base = self.secrets.optional(variable, "") if variable else ""
        return f"{base.rstrip('/')}/api/v1{path}"

    def _signed_headers(self) -> dict[str, str]:
        """The License API's HMAC headers, fresh for every call (the Date is signed)."""
        api_key = self.secrets.get(self.connection.api_key_env)
        shared_key = self.secrets.get(self.connection.shared_key_env)
        date = formatdate(usegmt=True)
        digest = hmac.new(shared_key.encode(), f"licenseSpring\ndate: {date}".encode(),
                          hashlib.sha256).digest()
        signature = base64.b64encode(digest).decode()
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
    @staticmethod
    def _name(row: dict[str, Any]) -> str:
        user = row.get("license_user") or {}
        return str(row["license_key"]) if row.get("license_key") else f"user/{user.get('email')}"

    async def read(self, desired: ProviderDesired) -> CurrentState:
        filters = [{"product__short_code": p} for p in self.connection.products] or [{}]
        lists = await asyncio.gather(self._pages("/devices/", {"device_active": "true"}),
                                     *(self._pages("/licenses/", f) for f in filters))
        devices = lists[0]
        licenses = [row for listed in lists[1:] for row in listed]
        self._licenses = {self._name(row): row for row in licenses}
        by_id = {row["id"]: self._name(row) for row in licenses}
        holders: dict[str, list[str]] = defaultdict(list)
        for device in devices:
            name = by_id.get(device["license"])
            if name is not None and device.get("device_active"):
                holders[name].append(device["hardware_id"])
        grants = [Grant(provider=self.id, pool=name, license=name,
                        subject=Subject(kind="device", id=hardware_id))
                  for name, hardware_ids in holders.items() for hardware_id in hardware_ids]
        pools = [PoolState(provider=self.id, id=name, name=row["product"]["short_code"],
                           used=len(holders.get(name, [])),
                           capacity=None if row.get("allow_unlimited_activations")
                           else int(row.get("max_activations") or 0))
                 for name, row in sorted(self._licenses.items())]
        fingerprints = {name: fingerprint(sorted(holders.get(name, [])))
                        for name in self._licenses}
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints)

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """Disabled licenses and user-based ones without a password cannot activate."""
        problems = []
        held = {g.key for g in current.grants}
        for grant in desired.grants:
            row = self._licenses.get(grant.license)
            if row is None or grant.key in held:
                continue
            if not row.get("enabled", True):
                problems.append(Problem(grant.source, f"licensespring: license "
                                                      f"'{grant.license}' is disabled"))
            if grant.license.startswith("user/") and grant.license[5:] not in (
                    self.connection.user_passwords):
                problems.append(Problem(grant.source, f"licensespring: activating "
                                                      f"'{grant.license}' needs its password: "
                                                      "add it to connection.user_passwords"))
        return problems

    # ---- operations ------------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        return [self._action(change) for change in changes]

    def _body(self, grant: Grant, *, activate: bool) -> dict[str, Any]:
        row = self._licenses[grant.license]
        body: dict[str, Any] = {"hardware_id": grant.subject.id,
                                "product": row["product"]["short_code"]}
        if row.get("license_key"):
            body["license_key"] = row["license_key"]
        else:
            username = grant.license.removeprefix("user/")
            body["username"] = username
            if activate:
                body["password"] = self.secrets.get(self.connection.user_passwords[username])
        return body

    def _action(self, change: Change) -> Action:
        grant = change.grant
        adding = change.kind is not ChangeKind.REMOVE
        endpoint = "/api/v4/activate_license" if adding else "/api/v4/deactivate_license"
        spec = RequestSpec("POST", endpoint, json=self._body(grant, activate=adding))
        verb = "assign" if adding else "release"
        return Action(
            id=f"licensespring:{grant.license}:device:{grant.subject.id}:{verb}", verb=verb,
            provider=self.id, pool=grant.pool, subject=grant.subject, license=grant.license,
            phase=PHASE_TAKE if adding else PHASE_FREE, frees=not adding,
            seat_delta=change.seat_delta, reason=change.reason,
            request=self.http.preview(spec), changes=(change,),
            # An activation is not re-sent blindly after a lost answer: `confirm` looks
            # the device up instead (a release is safe to repeat: device_not_found).
            repeatable=not adding,
            params={"endpoint": endpoint, "license": grant.license,
                    "hardware_id": grant.subject.id},
        )

    async def execute(self, action: Action) -> Outcome:
        adding = action.verb == "assign"
        grant = action.changes[0].grant
        spec = RequestSpec("POST", action.params["endpoint"],
                           json=self._body(grant, activate=adding),
                           headers=self._signed_headers())
        response = await self.http.send(spec, repeatable=action.repeatable)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        code = _code(response)
        if not adding and code in ALREADY_RELEASED:
            return Outcome(status=OutcomeStatus.ALREADY, message="device already deactivated")
        return Outcome(status=OutcomeStatus.FAILED, message=f"LicenseSpring {_describe(response)}")

    async def confirm(self, action: Action) -> bool | None:
        devices = await self._pages("/devices/", {"device_active": "true",
                                                  "hardware_id": action.params["hardware_id"]})
        row = self._licenses.get(action.params["license"])
        active = row is not None and any(d["license"] == row["id"] for d in devices)
        return active if action.verb == "assign" else not active


def _code(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    return str(data.get("code")) if isinstance(data, dict) and data.get("code") else None


def _describe(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(data, dict) and "code" in data:
        return f"{data['code']}: {data.get('message', '')} (HTTP {response.status_code})"
    detail = data.get("detail") if isinstance(data, dict) else None
    return f"HTTP {response.status_code}" + (f": {detail}" if detail else "")
