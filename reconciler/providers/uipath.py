"""UiPath Automation Suite: license quantities allocated down a hierarchy.

Host license → organizations → tenants (per service) → groups and users. Every
allocation is a quantity that is *set*, not added: a call states the new totals. So
the planner gets one `allocate` per organization and one per (tenant, service), each
body listing every code that subject holds (never one call per product) — two calls
when some codes grow and others shrink, because they must run at different moments:

    shrink users/groups → shrink tenants → shrink organizations
    → grow organizations → grow tenants → grow users/groups

so no level ever holds more than the level above it, even mid-apply (a swap between
two tenants at full organization capacity shrinks the donor first).

YAML: `organization: acme` holds codes with quantities; `tenant: acme-prod` (with
`attrs: {organization: acme}`) holds `<service>/<code>` with quantities; `group` and
`user` (with `attrs: {organization: ...}`) hold user-bundle codes. Names map to API
ids through `connection.ids` (unmapped names are used as ids); an organization's
name is also its `{organizationName}` in organization-level URLs.

Inferred (see docs/providers/uipath.md, "vendor assumptions"): reads are GETs on the
allocation paths; the user list is `GET .../user-license`; the host license
quantities are declared (`connection.host_license`); a group consumes one user
license per bundle code.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast

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
    SubjectDecl,
    SubjectKind,
)
from reconciler.providers.base import PHASE_FREE, PHASE_TAKE, Connection, Provider, fingerprint
from reconciler.secrets import REDACTOR

HOST_ACCOUNT_ID = "feb0dd79-85b6-483b-b297-0e49a1aa5b7d"
Direction = Literal["shrink", "grow"]
# Lower runs first: shrink bottom-up (around PHASE_FREE), then grow top-down (around
# PHASE_TAKE), so a level never holds more than the level above it between two calls.
PHASES: dict[tuple[str, Direction], int] = {
    ("user", "shrink"): PHASE_FREE - 40, ("group", "shrink"): PHASE_FREE - 40,
    ("tenant", "shrink"): PHASE_FREE, ("organization", "shrink"): PHASE_FREE + 40,
    ("organization", "grow"): PHASE_TAKE - 40, ("tenant", "grow"): PHASE_TAKE,
    ("user", "grow"): PHASE_TAKE + 40, ("group", "grow"): PHASE_TAKE + 40,
}
TokenKind = Literal["host", "app"]
QUANTIFIED = frozenset({"organization", "tenant"})


class UiPathConnection(Connection):
    """How to reach an Automation Suite installation (base URL: https://<domain>)."""

    base_url_env: str | None = "UIPATH_BASE_URL"
    host_username_env: str
    host_password_env: str
    client_id_env: str
    client_secret_env: str
    scope: str = Field(default="PM.License", description=(
        "Scopes the external app asks for (PM.License, or PM.License.Read and "
        "PM.License.Write)."))
    host_account_id: str = HOST_ACCOUNT_ID
    user_license_base: str = Field(default="/{organization}/lease_", description=(
        "Where organization-level (group, user) calls live; {organization} is the "
        "organization's name. The 2023.10 guide puts them under "
        "https://<domain>/<organizationName>/lease_."))
    ids: dict[str, str] = Field(default_factory=dict)
    host_license: dict[str, int] = Field(default_factory=dict)


def _code(license: str) -> str:
    return license.split("/", 1)[-1]


def _service(license: str) -> str:
    return license.split("/", 1)[0]


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
        self._orgs: dict[tuple[str, str], str] = {}
        """(kind, subject) of a tenant, group or user → its organization's name."""

    # ---- declarations --------------------------------------------------------------
    @classmethod
    def pool_of(cls, subject: Subject, license: str, attrs: Mapping[str, Any]) -> str:
        """Organizations draw from the host (`host/<code>`); everything below an
        organization draws from that organization's quantity (`<organization>/<code>`)."""
        code = _code(license)
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
    async def _token(self, kind: TokenKind, *, stale: str | None = None) -> str:
        """The token of `kind`, fetched once; fetched again only when `stale` is the one
        held, so concurrent calls that all met a 401 with it log in once, not each."""
        async with self._token_lock:
            held = self._tokens.get(kind)
            if held is not None and held != stale:
                return held
            if kind == "host":
                body = {"TenancyName": "Host",
                        "UsernameOrEmailAddress": self.secrets.get(
                            self.connection.host_username_env, secret=False),
                        "Password": self.secrets.get(self.connection.host_password_env)}
                response = await self.http.send(
                    RequestSpec("POST", "/api/account/authenticate", json=body), repeatable=True)
                token = json_object(response).get("result")
            else:
                form = {"grant_type": "client_credentials",
                        "client_id": self.secrets.get(self.connection.client_id_env, secret=False),
                        "client_secret": self.secrets.get(self.connection.client_secret_env),
                        "scope": self.connection.scope}
                response = await self.http.send(
                    RequestSpec("POST", "/identity_/connect/token", data=form), repeatable=True)
                token = json_object(response).get("access_token")
            if not response.is_success or not isinstance(token, str):
                raise VendorError(f"UiPath {kind} authentication failed: {_describe(response)}",
                                  code="auth", status=response.status_code)
            REDACTOR.register(token)
            self._tokens[kind] = token
            return token

    async def _call(self, kind: TokenKind, spec: RequestSpec) -> httpx.Response:
        """Sends with a Bearer token; on a 401 gets a new token once and resends once."""
        token = await self._token(kind)
        response = await self.http.send(_bearer(spec, token), repeatable=True)
        if response.status_code == 401:
            token = await self._token(kind, stale=token)
            response = await self.http.send(_bearer(spec, token), repeatable=True)
        return response

    async def _get(self, kind: TokenKind, path: str) -> dict[str, Any]:
        response = await self._call(kind, RequestSpec("GET", path))
        if not response.is_success:
            raise VendorError(f"UiPath GET {path}: {_describe(response)}",
                              status=response.status_code)
        return json_object(response)

    # ---- paths -----------------------------------------------------------------------
    def _org_path(self, org: str) -> str:
        return (f"/lrm/api/host/{self.connection.host_account_id}/organization/"
                f"{self._id(org)}/license")

    def _tenant_path(self, org: str, tenant: str, service: str) -> str:
        return (f"/lrm/api/account/{self._id(org)}/service-license/{self._id(tenant)}/"
                f"{service}")

    def _users_path(self, org: str) -> str:
        base = self.connection.user_license_base.format(organization=org).rstrip("/")
        return f"{base}/api/account/{self._id(org)}/user-license"

    def _group_path(self, org: str, group: str) -> str:
        return f"{self._users_path(org)}/group/{self._id(group)}"

    # ---- facts -------------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        """GETs for every organization, (tenant, service) and group the YAML names,
        plus one user list per organization.

        A tenant's services are those its licenses name, plus `attrs: {services: [..]}`
        (to own a service whose codes should all go). Tenants and groups have no list
        call, so only named ones are read, even in a pool with `prune: true`.
        """
        self._orgs = {(d.subject.kind, d.subject.id): str(d.attrs["organization"])
                      for d in desired.subjects if "organization" in d.attrs}
        for grant in desired.grants:
            if grant.subject.kind != "organization" and "organization" in grant.attrs:
                self._orgs.setdefault((grant.subject.kind, grant.subject.id),
                                      str(grant.attrs["organization"]))
        orgs = sorted({d.subject.id for d in desired.subjects if d.subject.kind == "organization"}
                      | {g.subject.id for g in desired.grants if g.subject.kind == "organization"}
                      | set(self._orgs.values()))
        services = _services(desired)
        tenants = sorted((t, s) for t, named in services.items() if ("tenant", t) in self._orgs
                         for s in named)
        groups = sorted(subject for kind, subject in self._orgs if kind == "group")

        org_data, tenant_data, group_data, user_data = await asyncio.gather(
            asyncio.gather(*(self._get("host", self._org_path(o)) for o in orgs)),
            asyncio.gather(*(self._get("host", self._tenant_path(
                self._orgs[("tenant", t)], t, s)) for t, s in tenants)),
            asyncio.gather(*(self._get("app", self._group_path(self._orgs[("group", g)], g))
                             for g in groups)),
            asyncio.gather(*(self._get("app", self._users_path(o)) for o in orgs)),
        )
        grants: list[Grant] = []
        fingerprints: dict[str, str] = {}
        org_codes: dict[str, set[str]] = defaultdict(set)

        def add(kind: str, subject: str, license: str, quantity: int | None, org: str) -> None:
            grants.append(Grant(
                provider=self.id, license=license, quantity=quantity,
                subject=Subject(kind=cast(SubjectKind, kind), id=subject),
                pool=f"host/{license}" if kind == "organization" else f"{org}/{_code(license)}",
                attrs={} if kind == "organization" else {"organization": org}))

        for org, data in zip(orgs, org_data, strict=True):
            fingerprints[f"organization/{org}"] = fingerprint(data)
            for item in data.get("productQuantities") or []:
                org_codes[org].add(item["code"])
                if item["quantity"]:
                    add("organization", org, item["code"], item["quantity"], org)
        for (tenant, service), data in zip(tenants, tenant_data, strict=True):
            fingerprints[f"tenant/{tenant}/{service}"] = fingerprint(data)
            for item in (data.get("license") or {}).get("products") or []:
                if item["quantity"]:
                    add("tenant", tenant, f"{service}/{item['code']}", item["quantity"],
                        self._orgs[("tenant", tenant)])
        for group, data in zip(groups, group_data, strict=True):
            fingerprints[f"group/{group}"] = fingerprint(data)
            for code in data.get("userBundleCodes") or []:
                add("group", group, code, None, self._orgs[("group", group)])
        names = {api_id: name for name, api_id in self.connection.ids.items()}
        for org, data in zip(orgs, user_data, strict=True):
            fingerprints[f"users/{org}"] = fingerprint(data)
            for row in data.get("users") or []:
                for code in row.get("userBundleCodes") or []:
                    add("user", names.get(row["userId"], row["userId"]), code, None, org)
        grants.sort(key=lambda g: g.key)
        return CurrentState(provider=self.id, grants=tuple(grants),
                            pools=tuple(self._pools(grants, desired.grants, org_codes)),
                            fingerprints=fingerprints)

    def _pools(self, grants: Sequence[Grant], declared: Sequence[Grant],
               org_codes: Mapping[str, set[str]]) -> list[PoolState]:
        """Every pool a live or declared grant names, and every code an organization or
        the host license has. Host pools carry the declared host license (a code it
        lacks has capacity 0); organization pools have no fixed capacity, since the
        plan may change the organization too: `check` compares the end states."""
        used: dict[str, int] = defaultdict(int)
        for grant in grants:
            used[grant.pool] += grant.units
        ids = set(used) | {g.pool for g in declared}
        ids |= {f"host/{code}" for code in self.connection.host_license}
        ids |= {f"{org}/{code}" for org, codes in org_codes.items() for code in codes}
        ids |= {f"host/{code}" for codes in org_codes.values() for code in codes}
        host = self.connection.host_license

        def capacity(pool: str) -> int | None:
            if not host or not pool.startswith("host/"):
                return None
            return host.get(pool.removeprefix("host/"), 0)

        return [PoolState(provider=self.id, id=pool, unit="quantity", used=used.get(pool, 0),
                          capacity=capacity(pool)) for pool in sorted(ids)]

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """The hierarchy, on the end state: what an organization's tenants, groups and
        users hold must fit in what the organization holds, per code. (Organizations
        against the host license is the planner's generic check on `host/<code>`.)"""
        problems = _shape_problems(desired)
        end = _end_state(desired, current)
        org_total: dict[str, int] = {}
        below: dict[str, int] = defaultdict(int)
        holders: dict[str, list[str]] = defaultdict(list)
        for grant in end:
            code = _code(grant.license)
            if grant.subject.kind == "organization":
                org_total[f"{grant.subject.id}/{code}"] = grant.units
            else:
                below[grant.pool] += grant.units
                holders[grant.pool].append(f"{grant.subject.kind} {grant.subject.id} "
                                           f"{grant.units}")
        files: dict[str, set[str]] = defaultdict(set)
        anchors: dict[str, Grant] = {}
        for grant in desired.grants:
            key = (f"{grant.subject.id}/{_code(grant.license)}"
                   if grant.subject.kind == "organization" else grant.pool)
            if grant.source is not None:
                files[key].add(grant.source.file)
                if grant.subject.kind != "organization":
                    anchors.setdefault(key, grant)
        for pool, needed in sorted(below.items()):
            held = org_total.get(pool, 0)
            if needed <= held:
                continue
            org, code = pool.split("/", 1)
            shown = sorted(holders[pool])
            listing = ", ".join(shown[:5]) + (f", … {len(shown) - 5} more"
                                              if len(shown) > 5 else "")
            anchor = anchors.get(pool)
            problems.append(Problem(anchor.source if anchor else None, (
                f"uipath: {code}: tenants, groups and users of organization '{org}' would "
                f"hold {needed} but the organization has {held} ({listing}; declared in "
                f"{', '.join(sorted(files[pool])) or 'the vendor'})")))
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
            held = live[(kind, subject)]
            if kind in QUANTIFIED:
                planned.extend(self._allocations(kind, subject, subject_changes, held))
            else:
                planned.extend(self._bundles(kind, subject, subject_changes, held))
        return _link_levels(planned)

    def _allocations(self, kind: str, subject: str, changes: list[Change],
                     held: Mapping[str, Grant]) -> list[Action]:
        """One call per (subject, service) and direction; each lists every code of that
        (subject, service) with its total at that moment, so a PUT that replaces the
        whole allocation and one that merges it both end where the YAML says."""
        by_service: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_service[_service(change.grant.license) if kind == "tenant" else ""].append(change)
        planned = []
        for service, members in sorted(by_service.items()):
            now = {_code(lic): g.units for lic, g in held.items()
                   if kind != "tenant" or _service(lic) == service}
            shrinks = [c for c in members if c.seat_delta < 0]
            grows = [c for c in members if c.seat_delta >= 0]
            steps: tuple[tuple[Direction, list[Change]], ...] = (
                ("shrink", shrinks), ("grow", grows))
            for direction, chosen in steps:
                if not chosen:
                    continue
                for change in chosen:
                    now[_code(change.grant.license)] = (
                        change.after.units if change.after is not None else 0)
                products = [{"code": code, "quantity": qty} for code, qty in sorted(now.items())]
                if kind == "organization":
                    spec = RequestSpec("PUT", self._org_path(subject),
                                       json={"productQuantities": products})
                else:
                    org = str(chosen[0].grant.attrs["organization"])
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
        org = str(changes[0].grant.attrs.get("organization")
                  or self._orgs.get((kind, subject), ""))
        kept = sorted(set(held) - removed)
        planned = []
        steps: tuple[tuple[Direction, list[str], list[Change]], ...] = (
            ("shrink", kept, [c for c in changes if c.kind is ChangeKind.REMOVE]),
            ("grow", sorted(set(kept) | added), [c for c in changes
                                                 if c.kind is not ChangeKind.REMOVE]))
        for direction, codes, members in steps:
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

    def _action(self, kind: str, subject: str, direction: Direction, changes: list[Change],
                spec: RequestSpec, suffix: str = "") -> Action:
        token: TokenKind = "host" if kind in QUANTIFIED else "app"
        licenses = sorted({c.grant.license for c in changes})
        org = subject if kind == "organization" else str(changes[0].grant.attrs.get(
            "organization") or self._orgs.get((kind, subject), ""))
        return Action(
            id=f"uipath:{kind}:{subject}{suffix}:{direction}", verb="allocate",
            provider=self.id, pool=changes[0].grant.pool,
            subject=Subject(kind=cast(SubjectKind, kind), id=subject),
            license=",".join(licenses), phase=PHASES[(kind, direction)],
            frees=direction == "shrink", seat_delta=sum(c.seat_delta for c in changes),
            reason="; ".join(c.reason for c in changes) + (
                "; quantities are set, not added: the call states the new totals"),
            request=self.http.preview(spec), changes=tuple(changes),
            params={"token": token, "method": spec.method, "path": spec.path, "body": spec.json,
                    "organization": org},
        )

    async def execute(self, action: Action) -> Outcome:
        params = action.params
        spec = RequestSpec(params["method"], params["path"], json=params["body"])
        response = await self._call(params["token"], spec)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        return Outcome(status=OutcomeStatus.FAILED,
                       message=f"UiPath refused the allocation ({spec.method} {spec.path}): "
                               f"{_describe(response)}")


# ---- pure helpers -------------------------------------------------------------------------
def _services(desired: ProviderDesired) -> dict[str, set[str]]:
    """Tenant → the service types to read: those its licenses name, plus attrs.services."""
    found: dict[str, set[str]] = defaultdict(set)
    for grant in desired.grants:
        if grant.subject.kind == "tenant":
            found[grant.subject.id].add(_service(grant.license))
    for declaration in desired.subjects:
        if declaration.subject.kind == "tenant":
            listed = declaration.attrs.get("services") or []
            found[declaration.subject.id].update(str(s) for s in listed)
    return found


def _shape_problems(desired: ProviderDesired) -> list[Problem]:
    """Every subject below an organization names it; quantities where the API takes
    them, and only there."""
    problems = [Problem(d.source, f"uipath: {d.subject} needs `attrs: {{organization: <name>}}`")
                for d in desired.subjects
                if d.subject.kind != "organization" and not d.attrs.get("organization")]
    for grant in desired.grants:
        kind = grant.subject.kind
        if kind in QUANTIFIED and (grant.quantity is None or grant.quantity < 1):
            problems.append(Problem(grant.source, (
                f"uipath: {grant.subject} '{grant.license}' needs a quantity of at least 1 "
                f"(to hold none, leave the code out of the list)")))
        if kind not in QUANTIFIED and grant.quantity is not None:
            problems.append(Problem(grant.source, (
                f"uipath: {grant.subject} '{grant.license}' is a user bundle code: a {kind} "
                f"holds one unit of it, so it takes no quantity")))
    return problems


def _end_state(desired: ProviderDesired, current: CurrentState) -> list[Grant]:
    """What the subjects would hold after the plan, by the planner's scope rules: a named
    subject holds exactly its list (a protected one keeps what it has too); an unnamed
    one keeps what it has unless its pool is pruned."""
    named: dict[tuple[str, str], SubjectDecl] = {
        (d.subject.kind, d.subject.id): d for d in desired.subjects}
    pruned = {pool.id for pool in desired.pools if pool.prune}
    end: dict[tuple[str, ...], Grant] = {}
    for grant in current.grants:
        declaration = named.get((grant.subject.kind, grant.subject.id))
        if declaration is None and grant.pool in pruned:
            continue
        if declaration is not None and not declaration.protected:
            continue
        end[grant.key] = grant
    for grant in desired.grants:
        end[grant.key] = grant
    return list(end.values())


def _link_levels(actions: list[Action]) -> list[Action]:
    """Within an organization, a grow below it waits for its grow, and its shrink waits
    for the shrinks below it: when one fails, the applier skips what depends on it
    instead of sending a call the vendor would refuse with a 409."""
    org_grow: dict[str, str] = {}
    below_shrinks: dict[str, list[str]] = defaultdict(list)
    for action in actions:
        org = str(action.params["organization"])
        if action.subject.kind == "organization" and not action.frees:
            org_grow[org] = action.id
        elif action.subject.kind != "organization" and action.frees:
            below_shrinks[org].append(action.id)
    linked = []
    for action in actions:
        org = str(action.params["organization"])
        extra: list[str] = []
        if action.subject.kind != "organization" and not action.frees and org in org_grow:
            extra = [org_grow[org]]
        if action.subject.kind == "organization" and action.frees:
            extra = below_shrinks.get(org, [])
        if extra:
            action = action.model_copy(update={
                "depends_on": tuple(sorted(set(action.depends_on) | set(extra)))})
        linked.append(action)
    return linked


def _bearer(spec: RequestSpec, token: str) -> RequestSpec:
    return RequestSpec(spec.method, spec.path, spec.params, spec.json, spec.data,
                       headers={**spec.headers, "Authorization": f"Bearer {token}"})


def _describe(response: httpx.Response) -> str:
    """`HTTP 409: <the vendor's message>`, from whichever error shape the server uses."""
    data = json_object(response)
    error = data.get("error")
    message = (data.get("message") or data.get("detail") or data.get("title")
               or (error.get("message") if isinstance(error, dict) else error))
    return f"HTTP {response.status_code}" + (f": {message}" if message else "")
