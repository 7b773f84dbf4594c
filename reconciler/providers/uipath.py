"""UiPath Automation Suite: license quantities allocated down a hierarchy.

Host license → organizations → tenants (per service) → groups and users. Every
allocation is a quantity that is *set*, not added: a call states the new totals of
the codes it lists. So the planner gets one `allocate` per organization and one per
(tenant, service) — two when some codes grow and others shrink, because they must
run at different moments:

    shrink users/groups → shrink tenants → shrink organizations
    → grow organizations → grow tenants → grow users/groups

so no level ever holds more than the level above it, even mid-apply (a swap between
two tenants at full organization capacity shrinks the donor first).

YAML: `organization: acme` holds codes with quantities; `tenant: acme-prod` (with
`attrs: {organization: acme}`) holds `<service>/<code>` with quantities; `group` and
`user` (with `attrs: {organization: ...}`) hold user-bundle codes. Names map to API
ids through `connection.ids` (unmapped names are used as ids).

Inferred (see README, "vendor assumptions"): reads are GETs on the allocation paths;
the user list is `GET .../user-license`; the host license quantities are declared
(`connection.host_license`); a group consumes one user license per bundle code.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

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
from reconciler.providers.base import Connection, Provider, fingerprint
from reconciler.secrets import REDACTOR

HOST_ACCOUNT_ID = "feb0dd79-85b6-483b-b297-0e49a1aa5b7d"
# Lower runs first: shrink bottom-up, then grow top-down.
PHASES = {
    ("user", "shrink"): 60, ("group", "shrink"): 60, ("tenant", "shrink"): 100,
    ("organization", "shrink"): 140, ("organization", "grow"): 260,
    ("tenant", "grow"): 300, ("user", "grow"): 340, ("group", "grow"): 340,
}
TokenKind = Literal["host", "app"]


class UiPathConnection(Connection):
    """How to reach an Automation Suite installation (base URL: https://<domain>)."""

    base_url_env: str | None = "UIPATH_BASE_URL"
    host_username_env: str
    host_password_env: str
    client_id_env: str
    client_secret_env: str
    scope: str = "PM.License PM.UserLicense"
    host_account_id: str = HOST_ACCOUNT_ID
    ids: dict[str, str] = Field(default_factory=dict)
    host_license: dict[str, int] = Field(default_factory=dict)


class UiPathProvider(Provider):
    id = "uipath"
    connection_model = UiPathConnection
    default_base_url = "https://automationsuite.local"
    subject_kinds = frozenset({"organization", "tenant", "group", "user"})

    connection: UiPathConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tokens: dict[TokenKind, str] = {}
        self._token_lock = asyncio.Lock()
        self._orgs: dict[str, str] = {}
        """Subject (tenant, group, user) → its organization's name, from the YAML."""

    # ---- declarations --------------------------------------------------------------
    @classmethod
    def pool_of(cls, subject: Subject, license: str, attrs: Mapping[str, Any]) -> str:
        code = license.split("/", 1)[-1]
        if subject.kind == "organization":
            return f"host/{code}"
        organization = attrs.get("organization")
        if not isinstance(organization, str) or not organization:
            raise ValueError(f"UiPath {subject.kind}s need `attrs: {{organization: <name>}}`")
        if subject.kind == "tenant" and "/" not in license:
            raise ValueError(f"tenant licenses are `<service>/<code>`, e.g. "
                             f"orchestrator/{license}")
        return f"{organization}/{code}"

    @classmethod
    def normalize_attrs(cls, attrs: Mapping[str, Any]) -> dict[str, Any]:
        return {"organization": attrs["organization"]} if "organization" in attrs else {}

    def _id(self, name: str) -> str:
        return self.connection.ids.get(name, name)

    # ---- tokens --------------------------------------------------------------------
    async def _token(self, kind: TokenKind, *, renew: bool = False) -> str:
        async with self._token_lock:
            if kind in self._tokens and not renew:
                return self._tokens[kind]
            if kind == "host":
                body = {"TenancyName": "Host",
                        "UsernameOrEmailAddress": self.secrets.get(
                            self.connection.host_username_env, secret=False),
                        "Password": self.secrets.get(self.connection.host_password_env)}
                response = await self.http.send(
                    RequestSpec("POST", "/api/account/authenticate", json=body), repeatable=True)
                token = _json(response).get("result")
            else:
                form = {"grant_type": "client_credentials",
                        "client_id": self.secrets.get(self.connection.client_id_env, secret=False),
                        "client_secret": self.secrets.get(self.connection.client_secret_env),
                        "scope": self.connection.scope}
                response = await self.http.send(
                    RequestSpec("POST", "/identity_/connect/token", data=form), repeatable=True)
                token = _json(response).get("access_token")
            if not response.is_success or not isinstance(token, str):
                raise VendorError(f"UiPath {kind} authentication failed: {_describe(response)}",
                                  status=response.status_code)
            REDACTOR.register(token)
            self._tokens[kind] = token
            return token

    async def _call(self, kind: TokenKind, spec: RequestSpec, *, repeatable: bool = True
                    ) -> httpx.Response:
        """Sends with a Bearer token; on 401 fetches a new token once and resends."""
        response: httpx.Response | None = None
        for attempt in (0, 1):
            token = await self._token(kind, renew=attempt == 1)
            headed = RequestSpec(spec.method, spec.path, spec.params, spec.json,
                                 headers={"Authorization": f"Bearer {token}"})
            response = await self.http.send(headed, repeatable=repeatable)
            if response.status_code != 401:
                return response
        assert response is not None
        return response

    async def _get(self, kind: TokenKind, path: str) -> dict[str, Any]:
        response = await self._call(kind, RequestSpec("GET", path))
        if not response.is_success:
            raise VendorError(f"UiPath GET {path}: {_describe(response)}",
                              status=response.status_code)
        return _json(response)

    # ---- paths -----------------------------------------------------------------------
    def _org_path(self, org: str) -> str:
        return (f"/lrm/api/host/{self.connection.host_account_id}/organization/"
                f"{self._id(org)}/license")

    def _tenant_path(self, org: str, tenant: str, service: str) -> str:
        return (f"/lrm/api/account/{self._id(org)}/service-license/{self._id(tenant)}/"
                f"{service}")

    def _group_path(self, org: str, group: str) -> str:
        return f"/lease_/api/account/{self._id(org)}/user-license/group/{self._id(group)}"

    def _users_path(self, org: str) -> str:
        return f"/lease_/api/account/{self._id(org)}/user-license"

    # ---- facts -------------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        """GETs for every organization, (tenant, service) and group the YAML names,
        plus one user list per organization."""
        self._orgs = {f"{d.subject.kind}:{d.subject.id}": str(d.attrs["organization"])
                      for d in desired.subjects if "organization" in d.attrs}
        orgs = sorted({d.subject.id for d in desired.subjects if d.subject.kind == "organization"}
                      | set(self._orgs.values()))
        services: dict[str, set[str]] = defaultdict(set)
        for grant in desired.grants:
            if grant.subject.kind == "tenant":
                services[grant.subject.id].add(grant.license.split("/", 1)[0])
        tenants = [(d.subject.id, service) for d in desired.subjects
                   if d.subject.kind == "tenant" for service in sorted(services[d.subject.id])]
        groups = [d.subject.id for d in desired.subjects if d.subject.kind == "group"]

        org_data, tenant_data, group_data, user_data = await asyncio.gather(
            asyncio.gather(*(self._get("host", self._org_path(o)) for o in orgs)),
            asyncio.gather(*(self._get("host", self._tenant_path(
                self._orgs[f"tenant:{t}"], t, s)) for t, s in tenants)),
            asyncio.gather(*(self._get("app", self._group_path(self._orgs[f"group:{g}"], g))
                             for g in groups)),
            asyncio.gather(*(self._get("app", self._users_path(o)) for o in orgs)),
        )
        grants: list[Grant] = []
        fingerprints: dict[str, str] = {}

        def add(kind: str, subject: str, license: str, quantity: int | None, org: str) -> None:
            pool = f"host/{license}" if kind == "organization" else \
                f"{org}/{license.split('/', 1)[-1]}"
            attrs = {} if kind == "organization" else {"organization": org}
            grants.append(Grant(provider=self.id, pool=pool, license=license, quantity=quantity,
                                subject=Subject(kind=kind, id=subject),
                                attrs=attrs))

        for org, data in zip(orgs, org_data, strict=True):
            fingerprints[f"organization/{org}"] = fingerprint(data)
            for item in data.get("productQuantities", []):
                if item["quantity"]:
                    add("organization", org, item["code"], item["quantity"], org)
        for (tenant, service), data in zip(tenants, tenant_data, strict=True):
            fingerprints[f"tenant/{tenant}/{service}"] = fingerprint(data)
            for item in (data.get("license") or {}).get("products", []):
                if item["quantity"]:
                    add("tenant", tenant, f"{service}/{item['code']}", item["quantity"],
                        self._orgs[f"tenant:{tenant}"])
        for group, data in zip(groups, group_data, strict=True):
            fingerprints[f"group/{group}"] = fingerprint(data)
            for code in data.get("userBundleCodes", []):
                add("group", group, code, None, self._orgs[f"group:{group}"])
        for org, data in zip(orgs, user_data, strict=True):
            fingerprints[f"users/{org}"] = fingerprint(data)
            for row in data.get("users", []):
                for code in row.get("userBundleCodes", []):
                    add("user", row["userId"], code, None, org)
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(self._pools(grants)), fingerprints=fingerprints)

    def _pools(self, grants: Sequence[Grant]) -> list[PoolState]:
        """Host pools carry the declared host license; the hierarchy below is `check`'s."""
        used: dict[str, int] = defaultdict(int)
        for grant in grants:
            used[grant.pool] += grant.units
        ids = set(used) | {f"host/{code}" for code in self.connection.host_license}
        return [PoolState(provider=self.id, id=pool, unit="quantity", used=used.get(pool, 0),
                          capacity=self.connection.host_license.get(pool.removeprefix("host/"))
                          if pool.startswith("host/") else None)
                for pool in sorted(ids)]

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """The end state of each organization must cover its tenants, groups and users."""
        end: dict[tuple[str, str, str, str], Grant] = {
            (g.subject.kind, g.subject.id, g.license, g.pool): g for g in current.grants}
        named = {(d.subject.kind, d.subject.id) for d in desired.subjects}
        for key in [k for k in end if (k[0], k[1]) in named]:
            del end[key]  # a named subject's list is complete
        for grant in desired.grants:
            end[(grant.subject.kind, grant.subject.id, grant.license, grant.pool)] = grant
        org_total: dict[str, int] = {}
        below: dict[str, int] = defaultdict(int)
        sources: dict[str, set[str]] = defaultdict(set)
        for grant in end.values():
            code = grant.license.split("/", 1)[-1]
            if grant.subject.kind == "organization":
                org_total[f"{grant.subject.id}/{code}"] = grant.units
            else:
                below[grant.pool] += grant.units
            if grant.source is not None:
                sources[grant.pool if grant.subject.kind != "organization"
                        else f"{grant.subject.id}/{code}"].add(grant.source.file)
        problems = []
        for pool, needed in sorted(below.items()):
            held = org_total.get(pool, 0)
            if needed > held:
                org, code = pool.split("/", 1)
                anchor = next((g.source for g in desired.grants if g.pool == pool), None)
                problems.append(Problem(anchor, (
                    f"uipath: {code}: tenants, groups and users of organization '{org}' would "
                    f"hold {needed} but the organization has {held} "
                    f"(declared in {', '.join(sorted(sources[pool])) or 'the vendor'})")))
        return problems

    # ---- operations ----------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        live: dict[tuple[str, str], dict[str, Grant]] = defaultdict(dict)
        for grant in current.grants:
            live[(grant.subject.kind, grant.subject.id)][grant.license] = grant
        by_subject: dict[tuple[str, str], list[Change]] = defaultdict(list)
        for change in changes:
            by_subject[(change.grant.subject.kind, change.grant.subject.id)].append(change)
        planned: list[Action] = []
        for (kind, subject), subject_changes in sorted(by_subject.items()):
            if kind in {"organization", "tenant"}:
                planned.extend(self._allocations(kind, subject, subject_changes))
            else:
                planned.extend(self._bundles(kind, subject, subject_changes,
                                             live[(kind, subject)]))
        return planned

    def _allocations(self, kind: str, subject: str, changes: list[Change]) -> list[Action]:
        """One call per (subject, service) and direction, listing the new totals."""
        by_service: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            service = change.grant.license.split("/", 1)[0] if kind == "tenant" else ""
            by_service[service].append(change)
        planned = []
        for service, members in sorted(by_service.items()):
            for direction in ("shrink", "grow"):
                chosen = [c for c in members if (c.seat_delta < 0) == (direction == "shrink")
                          and c.seat_delta != 0]
                if not chosen:
                    continue
                products = [{"code": c.grant.license.split("/", 1)[-1],
                             "quantity": c.after.units if c.after is not None else 0}
                            for c in sorted(chosen, key=lambda c: c.grant.license)]
                if kind == "organization":
                    spec = RequestSpec("PUT", self._org_path(subject),
                                       json={"productQuantities": products})
                else:
                    org = self._orgs[f"tenant:{subject}"]
                    spec = RequestSpec("PUT", self._tenant_path(org, subject, service),
                                       json={"tenantName": subject, "products": products})
                planned.append(self._action(kind, subject, direction, chosen, spec,
                                            suffix=f":{service}" if service else ""))
        return planned

    def _bundles(self, kind: str, subject: str, changes: list[Change],
                 held: Mapping[str, Grant]) -> list[Action]:
        """Bundle lists are sets too: first drop what goes, then set the full new list."""
        removed = {c.grant.license for c in changes if c.kind is ChangeKind.REMOVE}
        added = {c.grant.license for c in changes if c.kind is ChangeKind.ADD}
        org = self._orgs.get(f"{kind}:{subject}") or str(changes[0].grant.attrs["organization"])
        kept = sorted(set(held) - removed)
        planned = []
        for direction, codes, members in (
                ("shrink", kept, [c for c in changes if c.kind is ChangeKind.REMOVE]),
                ("grow", sorted(set(kept) | added), [c for c in changes
                                                     if c.kind is ChangeKind.ADD])):
            if not members:
                continue
            if kind == "group":
                spec = RequestSpec("PUT", self._group_path(org, subject),
                                   json={"userBundleCodes": codes, "useExternalLicense": False})
            else:
                spec = RequestSpec("PUT", self._users_path(org), json={
                    "userIds": [self._id(subject)], "userBundleCodes": codes,
                    "useExternalLicense": False})
            planned.append(self._action(kind, subject, direction, members, spec))
        return planned

    def _action(self, kind: str, subject: str, direction: str, changes: list[Change],
                spec: RequestSpec, suffix: str = "") -> Action:
        token: TokenKind = "host" if kind in {"organization", "tenant"} else "app"
        licenses = sorted({c.grant.license for c in changes})
        return Action(
            id=f"uipath:{kind}:{subject}{suffix}:{direction}", verb="allocate",
            provider=self.id, pool=changes[0].grant.pool,
            subject=Subject(kind=kind, id=subject),
            license=",".join(licenses), phase=PHASES[(kind, direction)],
            frees=direction == "shrink", seat_delta=sum(c.seat_delta for c in changes),
            reason="; ".join(c.reason for c in changes) + (
                "; quantities are set, not added: the call states the new totals"),
            request=self.http.preview(spec), changes=tuple(changes),
            params={"token": token, "method": spec.method, "path": spec.path, "body": spec.json},
        )

    async def execute(self, action: Action) -> Outcome:
        params = action.params
        spec = RequestSpec(params["method"], params["path"], json=params["body"])
        response = await self._call(params["token"], spec)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        return Outcome(status=OutcomeStatus.FAILED, message=f"UiPath refused the allocation: "
                                                            f"{_describe(response)}")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _describe(response: httpx.Response) -> str:
    data = _json(response)
    error = data.get("error")
    message = data.get("message") or (error.get("message") if isinstance(error, dict) else error)
    return f"HTTP {response.status_code}" + (f": {message}" if message else "")
