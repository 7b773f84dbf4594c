"""UiPath Automation Suite: license quantities allocated down a hierarchy.

Host license → organizations → tenants (per service) → groups and users. The modules:
`connection` (settings), `calls` (every request, the inferred reads marked as such),
`auth` (tokens), `facts` (parsers of the vendor's answers), `planning` (pure `check`
and `actions`). This class only reads and sends.

YAML: `organization: acme` holds codes with quantities; `tenant: acme-prod` (with
`attrs: {organization: acme}`) holds `<service>/<code>` with quantities; `group` and
`user` (with `attrs: {organization: ...}`) hold user-bundle codes. Names map to API ids
through `connection.ids` (unmapped names are used as ids).

Inferred (docs/providers/uipath.md, "Inferred calls"): the reads (GETs on the
allocation paths, `calls.inferred_*`); the host license quantities are declared
(`connection.host_license`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.errors import Problem, VendorError
from reconciler.http import describe
from reconciler.model import (
    Action,
    Call,
    Change,
    CurrentState,
    Grant,
    Outcome,
    OutcomeStatus,
    PoolState,
    ProviderDesired,
    Subject,
)
from reconciler.offloop import off_loop
from reconciler.providers.base import Provider, fingerprint
from reconciler.providers.uipath import calls, facts, planning
from reconciler.providers.uipath.auth import Tokens
from reconciler.providers.uipath.connection import (
    HOST_ACCOUNT_ID,
    TokenKind,
    UiPathConnection,
    code_of,
    service_of,
    token_kind,
)
from reconciler.providers.uipath.facts import UiPathFacts

__all__ = ["HOST_ACCOUNT_ID", "UiPathConnection", "UiPathFacts", "UiPathProvider"]


class UiPathProvider(Provider):
    id = "uipath"
    connection_model = UiPathConnection
    default_base_url = "https://automationsuite.local"
    subject_kinds = frozenset({"organization", "tenant", "group", "user"})
    path_kinds = frozenset({"organization", "tenant", "group"})
    """Their ids (or the API ids `connection.ids` maps them to) are URL path segments;
    a user id travels only in the body (`userIds`)."""

    connection: UiPathConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokens = Tokens(self.connection, self.http, self.secrets)

    # ---- declarations --------------------------------------------------------------
    @classmethod
    def pool_of(cls, subject: Subject, license: str, attrs: Mapping[str, Any]) -> str:
        """Organizations draw from the host (`host/<code>`); everything below an
        organization draws from that organization's quantity (`<organization>/<code>`)."""
        code = code_of(license)
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

    # ---- facts ---------------------------------------------------------------------
    async def _read(self, kind: TokenKind, call: Call) -> Any:
        response = await self.tokens.send(kind, call, repeatable=True)
        if not response.is_success:
            raise VendorError(f"UiPath GET /{'/'.join(call.path)}: {describe(response)}",
                              status=response.status_code)
        try:
            return response.json()
        except ValueError:
            raise VendorError(f"UiPath GET /{'/'.join(call.path)}: HTTP "
                              f"{response.status_code} with a non-JSON body") from None

    async def read(self, desired: ProviderDesired) -> CurrentState:
        """GETs for every organization, (tenant, service) and group the YAML names, plus
        one user list per organization (all inferred reads: see `calls`).

        A tenant's services are those its licenses name, plus `attrs: {services: [..]}`
        (to own a service whose codes should all go). Tenants and groups have no list
        call, so only named ones are read, even in a pool with `prune: true`.
        """
        owner = _organizations(desired)
        orgs = sorted({d.subject.id for d in desired.subjects if d.subject.kind == "organization"}
                      | {g.subject.id for g in desired.grants if g.subject.kind == "organization"}
                      | set(owner.values()))
        tenants = sorted((t, s) for t, named in _services(desired).items()
                         if ("tenant", t) in owner for s in named)
        groups = sorted(subject for kind, subject in owner if kind == "group")
        conn = self.connection
        read = await _all(
            asyncio.gather(*(self._read("host", calls.inferred_organization_read(conn, o))
                             for o in orgs)),
            asyncio.gather(*(self._read("host", calls.inferred_tenant_read(
                conn, owner[("tenant", t)], t, s)) for t, s in tenants)),
            asyncio.gather(*(self._read("app", calls.inferred_group_read(
                conn, owner[("group", g)], g)) for g in groups)),
            asyncio.gather(*(self._read("app", calls.inferred_users_read(conn, o))
                             for o in orgs)),
        )
        return await off_loop(self._state, desired, owner, orgs, tenants, groups, read)

    def _state(self, desired: ProviderDesired, owner: dict[tuple[str, str], str],
               orgs: list[str], tenants: list[tuple[str, str]], groups: list[str],
               read: list[Any]) -> CurrentState:
        """The state the organizations', tenants', groups' and users' reads describe
        (built off the event loop)."""
        org_data, tenant_data, group_data, user_data = read
        conn = self.connection
        grants: list[Grant] = []
        prints: dict[str, str] = {}
        org_codes: dict[str, set[str]] = defaultdict(set)

        def add(kind: str, subject: str, license: str, quantity: int | None, org: str) -> None:
            attrs = {} if kind == "organization" else {"organization": org}
            held = Subject(kind=kind, id=subject)
            grants.append(Grant(provider=self.id, license=license, quantity=quantity,
                                subject=held, pool=self.pool_of(held, license, attrs),
                                attrs=attrs))

        for org, data in zip(orgs, org_data, strict=True):
            prints[f"organization/{org}"] = fingerprint(data)
            for code, quantity in facts.organization_quantities(data).items():
                org_codes[org].add(code)
                if quantity:
                    add("organization", org, code, quantity, org)
        for (tenant, service), data in zip(tenants, tenant_data, strict=True):
            prints[f"tenant/{tenant}/{service}"] = fingerprint(data)
            for code, quantity in facts.tenant_quantities(data).items():
                if quantity:
                    add("tenant", tenant, f"{service}/{code}", quantity, owner[("tenant", tenant)])
        for group, data in zip(groups, group_data, strict=True):
            prints[f"group/{group}"] = fingerprint(data)
            for code in facts.group_bundles(data):
                add("group", group, code, None, owner[("group", group)])
        names = {api_id: name for name, api_id in conn.ids.items()}
        for org, data in zip(orgs, user_data, strict=True):
            prints[f"users/{org}"] = fingerprint(data)
            for user_id, codes in facts.user_bundles(data).items():
                for code in codes:
                    add("user", names.get(user_id, user_id), code, None, org)
        grants.sort(key=lambda g: g.key)
        return CurrentState(provider=self.id, grants=tuple(grants),
                            pools=tuple(self._pools(grants, desired.grants, org_codes)),
                            fingerprints=prints, facts=UiPathFacts(organization_of=owner))

    def _pools(self, grants: Sequence[Grant], declared: Sequence[Grant],
               org_codes: Mapping[str, set[str]]) -> list[PoolState]:
        """Every pool a live or declared grant names, and every code an organization or
        the host license has. Host pools carry the declared host license (a code it
        lacks has capacity 0); organization pools have no fixed capacity, since the
        plan may change the organization too: `check` compares the end states. A
        group's rule uses nothing until its members sign in, so it is not counted."""
        used: dict[str, int] = defaultdict(int)
        for grant in grants:
            if grant.subject.kind != "group":
                used[grant.pool] += grant.units
        ids = {g.pool for g in grants} | {g.pool for g in declared}
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

    def check(self, desired: ProviderDesired, current: CurrentState,
              changes: Sequence[Change]) -> list[Problem]:
        return planning.check(desired, current, changes)

    # ---- operations ----------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        return planning.actions(changes, current, self.connection, self.http.preview)

    async def execute(self, action: Action) -> Outcome:
        """Sends `action.call` itself; a PUT of totals is safe to repeat."""
        response = await self.tokens.send(token_kind(action.subject.kind), action.call,
                                          repeatable=action.repeatable)
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        return Outcome(status=OutcomeStatus.FAILED,
                       message=f"UiPath refused the allocation ({action.call.method} "
                               f"/{'/'.join(action.call.path)}): {describe(response)}")

    async def confirm(self, action: Action) -> bool | None:
        """Reads the one resource the action's PUT sets and compares it with the totals
        the PUT states: True when the vendor holds exactly them, False otherwise."""
        body = action.call.body if isinstance(action.call.body, dict) else {}
        data = await self._read(token_kind(action.subject.kind),
                                calls.inferred_read_of(action.call))
        kind = action.subject.kind
        if kind in ("organization", "tenant"):
            wanted = {p["code"]: p["quantity"] for p in
                      body.get("productQuantities" if kind == "organization" else "products", [])}
            held = (facts.organization_quantities(data) if kind == "organization"
                    else facts.tenant_quantities(data))
            return all(held.get(code, 0) == quantity for code, quantity in wanted.items())
        codes = sorted(set(body.get("userBundleCodes", [])))
        if kind == "group":
            return facts.group_bundles(data) == codes
        users = facts.user_bundles(data)
        # A user left with no codes may drop out of the list: absent holds nothing.
        return all(users.get(user, []) == codes for user in body.get("userIds", []))


# ---- what the YAML says about the hierarchy ----------------------------------------------------
def _organizations(desired: ProviderDesired) -> dict[tuple[str, str], str]:
    """(kind, subject) of every tenant, group and user the YAML names → its organization."""
    owner: dict[tuple[str, str], str] = {
        (d.subject.kind, d.subject.id): str(d.attrs["organization"])
             for d in desired.subjects if "organization" in d.attrs}
    for grant in desired.grants:
        if grant.subject.kind != "organization" and "organization" in grant.attrs:
            owner.setdefault((grant.subject.kind, grant.subject.id),
                             str(grant.attrs["organization"]))
    return owner


def _services(desired: ProviderDesired) -> dict[str, set[str]]:
    """Tenant → the service types to read: those its licenses name, plus attrs.services."""
    found: dict[str, set[str]] = defaultdict(set)
    for grant in desired.grants:
        if grant.subject.kind == "tenant":
            found[grant.subject.id].add(service_of(grant.license))
    for declaration in desired.subjects:
        if declaration.subject.kind == "tenant":
            listed = declaration.attrs.get("services") or []
            found[declaration.subject.id].update(str(s) for s in listed)
    return found


async def _all(*reads: Any) -> list[Any]:
    """`asyncio.gather`, but the first failure cancels the reads still running: none is
    left to fail during shutdown, where asyncio would print its traceback."""
    tasks = [asyncio.ensure_future(read) for read in reads]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
