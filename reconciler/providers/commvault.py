"""Commvault Command Center: which licenses each client consumes from the CommCell.

A license name is a pool (the CommCell's seats of it); a client consumes a seat.
Commvault has no "assign one license" call: `Client/License/Reconfigure` re-applies
**every** license the client's installed agents need. So to reach a mixed target
(some licenses back, others still released) the plan re-applies first, then
releases what the client should not hold, and says why in each action.

The pool is the license name: one `providers.commvault` block is one CommCell, so
"<CommCell>/<license>" needs no CommCell part (`pool_of` cannot see the connection).

Capacity, two numbers per license: the *end state* (the planner's generic check) and
the *peak* while re-applies hold seats they will release again (`check`, below). Plain
releases run first (PHASE_FREE), then every re-apply (PHASE_REAPPLY), then the
releases that undo what a re-apply over-took (PHASE_RELEASE_AFTER_REAPPLY); the peak
is what the CommCell holds just before those last releases.

A re-apply is not repeatable: once the releases after it have run, sending it again
consumes those seats again (and can take the CommCell's last seat from someone else).
A retry before the releases would be harmless, but the applier cannot know which
case it is in, so it is sent at most once and crash recovery asks `confirm` instead.

Inferred (see docs/providers/commvault.md, "vendor assumptions"), each in one setting:
- which licenses an agent consumes (`agent_licenses`, default `DEFAULT_AGENT_LICENSES`);
- license capacity per name (`capacity`): no public page shows a read for it;
- errorCode 3 on a release means "not consumed": counted as already released;
- an API access token is sent as `Authtoken: Bearer <token>` (`token_prefix`).
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from pydantic import Field, model_validator

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
from reconciler.secrets import REDACTOR

DEFAULT_AGENT_LICENSES: dict[str, list[str]] = {
    "File System": ["Server File System"],
    "Virtual Server": ["Virtual Server"],
    "SQL Server": ["SQL Server"],
    "Exchange Mailbox": ["Exchange Mailbox"],
}
NOT_CONSUMED_CODES = (3,)
TOKEN_PREFIXES = ("QSDK ", "SAML ", "Bearer ")
PHASE_REAPPLY = PHASE_TAKE - 50
PHASE_RELEASE_AFTER_REAPPLY = PHASE_TAKE + 50


class CommvaultConnection(Connection):
    """How to reach one CommCell's Command Center API (base URL ends in /api)."""

    base_url_env: str | None = "COMMVAULT_BASE_URL"
    token_env: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    platform_types: tuple[int, ...] = (1,)
    capacity: dict[str, int] = Field(default_factory=dict)
    agent_licenses: dict[str, list[str]] = Field(
        default_factory=lambda: dict(DEFAULT_AGENT_LICENSES))
    not_consumed_codes: tuple[int, ...] = NOT_CONSUMED_CODES
    token_prefix: str = "Bearer "
    """Put before a `token_env` value that has none of QSDK/SAML/Bearer (cvpysdk's rule)."""

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> CommvaultConnection:
        if self.token_env is None and (self.username_env is None or self.password_env is None):
            raise ValueError("set token_env, or username_env and password_env")
        return self


class CommvaultProvider(Provider):
    id = "commvault"
    connection_model = CommvaultConnection
    default_base_url = "https://localhost/commandcenter/api"
    subject_kinds = frozenset({"client"})

    connection: CommvaultConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token: str | None = None
        self._login_lock = asyncio.Lock()
        self._clients: dict[str, dict[str, Any]] = {}
        self._license_info: dict[str, dict[str, Any]] = {}

    # ---- auth ------------------------------------------------------------------------
    async def _authtoken(self, *, renew: bool = False) -> str:
        async with self._login_lock:
            if self._token is not None and not renew:
                return self._token
            if self.connection.token_env is not None:
                token = self.secrets.get(self.connection.token_env)
                if not token.startswith(TOKEN_PREFIXES):
                    token = self.connection.token_prefix + token
                self._token = token
                return self._token
            assert self.connection.username_env and self.connection.password_env
            username = self.secrets.get(self.connection.username_env, secret=False)
            password = self.secrets.get(self.connection.password_env)
            encoded = base64.b64encode(password.encode()).decode()
            REDACTOR.register(encoded)
            body = {"mode": 4, "username": username, "password": encoded, "clientType": 30}
            response = await self.http.send(RequestSpec("POST", "/Login", json=body),
                                            repeatable=True)
            data = _json(response)
            if "token" not in data:
                errors = data.get("errList") or [{}]
                reason = errors[0].get("errLogMessage", f"HTTP {response.status_code}")
                raise VendorError(f"Commvault login failed: {reason}")
            self._token = str(data["token"])
            REDACTOR.register(self._token)
            return self._token

    async def _call(self, spec: RequestSpec, *, repeatable: bool) -> httpx.Response:
        """Sends with the Authtoken header; on 401 logs in again once and retries."""
        for attempt in (0, 1):
            token = await self._authtoken(renew=attempt == 1)
            headed = RequestSpec(spec.method, spec.path, spec.params, spec.json,
                                 headers={"Authtoken": token, "Accept": "application/json"})
            response = await self.http.send(headed, repeatable=repeatable)
            if response.status_code != 401 or self.connection.token_env is not None:
                return response
        return response

    async def _get(self, path: str, **params: str) -> dict[str, Any]:
        """A read; an `errorCode` in a 200 is an error too, never an empty answer.

        (A client deleted between the listing and its license read answers 200 with an
        errorCode: taken as "holds nothing", it would plan a re-apply.)
        """
        response = await self._call(RequestSpec("GET", path, params=params), repeatable=True)
        if not response.is_success:
            raise VendorError(f"Commvault GET {path}: {_describe(response)}",
                              status=response.status_code)
        data = _json(response)
        code = data.get("errorCode") or 0
        if code != 0:
            raise VendorError(f"Commvault GET {path}: error {code}: "
                              f"{data.get('errorMessage', '')}", code=str(code))
        return data

    # ---- facts -------------------------------------------------------------------------
    @classmethod
    def pool_of(cls, subject: Subject, license: str, attrs: Mapping[str, Any]) -> str:
        return license

    async def read(self, desired: ProviderDesired) -> CurrentState:
        """Clients once, then each client's licenses (VendorHttp bounds the concurrency).

        Every client's licenses are read (a pool's `used` counts all of them); agents
        only of the clients the YAML names, the only ones a re-apply can be planned for.
        """
        named = {d.subject.id for d in desired.subjects if d.subject.kind == "client"}
        listing = await self._get("/Client")
        entities = [row["client"]["clientEntity"] for row in listing.get("clientProperties", [])]

        async def one(entity: dict[str, Any]) -> dict[str, Any]:
            client_id = str(entity["clientId"])
            licenses = await self._get(f"/Client/{client_id}/License")
            agents: list[str] | None = None
            if entity["clientName"] in named:
                listed = await self._get("/Agent", clientId=client_id)
                agents = sorted(a["idaEntity"]["appName"]
                                for a in listed.get("agentProperties", []))
            return {"id": int(entity["clientId"]), "name": entity["clientName"],
                    "licenses": licenses.get("licensesInfo", []), "agents": agents}

        clients = await asyncio.gather(*(one(entity) for entity in entities))
        self._clients = {client["name"]: client for client in clients}
        consumers: dict[str, list[str]] = defaultdict(list)
        grants: list[Grant] = []
        for client in clients:
            for info in client["licenses"]:
                name = info["license"]["licenseName"]
                self._license_info[name] = info
                consumers[name].append(client["name"])
                grants.append(Grant(provider=self.id, pool=name,
                                    subject=Subject(kind="client", id=client["name"]),
                                    license=name))
        names = sorted(set(consumers) | set(self.connection.capacity)
                       | {n for ns in self.connection.agent_licenses.values() for n in ns})
        pools = [PoolState(provider=self.id, id=name, capacity=self.connection.capacity.get(name),
                           used=len(consumers.get(name, []))) for name in names]
        fingerprints = {name: fingerprint(sorted(consumers.get(name, []))) for name in names}
        fingerprints["clients"] = fingerprint(sorted((c["name"], c["id"], c["agents"] or [])
                                                     for c in clients))
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints)

    def _needed(self, client: Mapping[str, Any]) -> set[str]:
        """Every license a re-apply would consume on this client."""
        if client["agents"] is None:
            raise RuntimeError(f"commvault: agents of client '{client['name']}' were not read "
                               "(only named clients can be re-applied)")
        table = self.connection.agent_licenses
        return {name for agent in client["agents"] for name in table.get(agent, [])}

    def check(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """Clients must exist, and only licenses their agents use can be re-applied."""
        problems: list[Problem] = []
        held = {(g.subject.id, g.license) for g in current.grants}
        for grant in desired.grants:
            client = self._clients.get(grant.subject.id)
            if client is None:
                problems.append(Problem(grant.source, f"commvault: no client named "
                                                      f"'{grant.subject.id}' in the CommCell"))
            elif (grant.subject.id, grant.license) not in held and grant.license not in (
                    self._needed(client)):
                agents = ", ".join(client["agents"] or []) or "none"
                problems.append(Problem(grant.source, f"commvault: client '{grant.subject.id}' "
                                                      f"has no agent that consumes "
                                                      f"'{grant.license}' (agents: {agents}), so "
                                                      "a re-apply cannot give it back"))
        problems.extend(self._peak_problems(desired, current))
        return problems

    def _peak_problems(self, desired: ProviderDesired, current: CurrentState) -> list[Problem]:
        """A re-apply briefly takes seats the client will release again: they must exist.

        Seats in use just before the releases that follow the re-applies: today's, minus
        what plain releases (phase FREE, first) give back, plus every license a re-apply
        consumes that its client does not hold. Frees of unnamed clients in pruned pools
        are not subtracted: the figure can only be too high, never too low.
        """
        named = {d.subject.id: d for d in desired.subjects if d.subject.kind == "client"}
        wanted: dict[str, set[str]] = defaultdict(set)
        for grant in desired.grants:
            wanted[grant.subject.id].add(grant.license)
        held: dict[str, set[str]] = defaultdict(set)
        for grant in current.grants:
            held[grant.subject.id].add(grant.license)
        peak = {pool.id: pool.used for pool in current.pools}
        why: dict[str, list[str]] = defaultdict(list)
        for name, decl in sorted(named.items()):
            client = self._clients.get(name)
            if client is None:
                continue
            if wanted[name] - held[name]:
                for license in sorted(self._needed(client) - held[name]):
                    peak[license] = peak.get(license, 0) + 1
                    why[license].append(name)
            elif not decl.protected:
                for license in held[name] - wanted[name]:
                    peak[license] -= 1
        problems = []
        for pool in current.pools:
            if pool.capacity is not None and peak.get(pool.id, 0) > pool.capacity:
                problems.append(Problem(desired.source, f"commvault: re-applying licenses on "
                                                        f"{', '.join(why[pool.id])} needs "
                                                        f"{peak[pool.id]} seats of '{pool.id}' "
                                                        f"at once but the CommCell has "
                                                        f"{pool.capacity} ({pool.used} in use); "
                                                        "a re-apply consumes every license "
                                                        "the client's agents need"))
        return problems

    # ---- operations ----------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        by_client: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_client[change.grant.subject.id].append(change)
        held: dict[str, set[str]] = defaultdict(set)
        for grant in current.grants:
            held[grant.subject.id].add(grant.license)
        planned: list[Action] = []
        for name, client_changes in sorted(by_client.items()):
            planned.extend(self._client_actions(name, client_changes, held[name]))
        return self._reapplies_wait_for_frees(planned, current)

    @staticmethod
    def _reapplies_wait_for_frees(planned: list[Action], current: CurrentState) -> list[Action]:
        """A re-apply waits for the plain releases of every pool it takes a seat in.

        The planner links takes to frees by the action's one `pool`; a re-apply takes
        seats in several, so it names them (`params.takes`). Where a pool has room for
        every re-apply without the frees, no link is made (a failed free then skips
        nothing it did not need).
        """
        capacity = {pool.id: (pool.capacity, pool.used) for pool in current.pools}
        takers: dict[str, int] = defaultdict(int)
        for action in planned:
            for license in action.params.get("takes", ()):
                takers[license] += 1
        frees_by_license: dict[str, list[Action]] = defaultdict(list)
        for other in planned:
            if other.frees:
                for license in other.params["licenses"]:
                    frees_by_license[license].append(other)
        linked: list[Action] = []
        for action in planned:
            if action.params.get("kind") != "reapply":
                linked.append(action)
                continue
            tight = set()
            for license in action.params["takes"]:
                limit, used = capacity.get(license, (None, 0))
                if limit is None or used + takers[license] > limit:
                    tight.add(license)
            frees = sorted({other.id for license in tight
                            for other in frees_by_license[license]
                            if other.phase < action.phase})
            linked.append(action.model_copy(update={"depends_on": tuple(frees)})
                          if frees else action)
        return linked

    def _client_actions(self, name: str, changes: list[Change], held: set[str]) -> list[Action]:
        client = self._clients[name]
        adds = sorted(c.grant.license for c in changes if c.kind is ChangeKind.ADD)
        removes = {c.grant.license: c for c in changes if c.kind is ChangeKind.REMOVE}
        subject = Subject(kind="client", id=name)
        if not adds:
            if held and set(removes) == held:
                return [self._release(subject, client, sorted(held), list(removes.values()),
                                      PHASE_FREE, (), "the client should hold no license: "
                                      "client-level release", client_level=True)]
            return [self._release(subject, client, [lic], [change], PHASE_FREE, (), change.reason)
                    for lic, change in sorted(removes.items())]
        reapply = self._reapply(subject, client, adds, held,
                                [c for c in changes if c.kind is ChangeKind.ADD])
        planned = [reapply]
        keep = held - set(removes) | set(adds)
        for license in sorted((self._needed(client) | held) - keep):
            change = removes.get(license)
            why = ("re-apply consumes every license the client's agents need; "
                   f"'{license}' is not declared for it, so it is released again")
            if license not in self._license_info:
                why += " (its license type is read from the client after the re-apply)"
            planned.append(self._release(subject, client, [license],
                                         [change] if change else [],
                                         PHASE_RELEASE_AFTER_REAPPLY, (reapply.id,),
                                         f"{change.reason}; {why}" if change else why))
        return planned

    def _reapply(self, subject: Subject, client: Mapping[str, Any], adds: list[str],
                 held: set[str], changes: list[Change]) -> Action:
        body = {"clientInfo": {"clientId": client["id"]},
                "platformTypes": list(self.connection.platform_types)}
        spec = RequestSpec("POST", "/Client/License/Reconfigure", json=body)
        return Action(
            id=f"commvault:client:{subject.id}:reapply", verb="assign", provider=self.id,
            pool=adds[0], subject=subject, license=",".join(adds), phase=PHASE_REAPPLY,
            seat_delta=sum(c.seat_delta for c in changes),
            reason="; ".join(c.reason for c in changes)
                   + "; Commvault cannot assign one license: a re-apply consumes every license "
                   f"the client's agents need ({', '.join(sorted(self._needed(client)))})",
            request=self.http.preview(spec), changes=tuple(changes), repeatable=False,
            params={"kind": "reapply", "client_id": client["id"], "body": body,
                    "expect": sorted(self._needed(client)),
                    "takes": sorted(self._needed(client) - held)},
        )

    def _release(self, subject: Subject, client: Mapping[str, Any], licenses: list[str],
                 changes: list[Change], phase: int, depends_on: tuple[str, ...], reason: str,
                 *, client_level: bool = False) -> Action:
        if client_level:
            body: dict[str, Any] = {"isClientLevelOperation": True,
                                    "clientEntity": {"clientId": client["id"]}}
            action_id = f"commvault:client:{subject.id}:release-all"
        else:
            body = {"licensesInfo": [self._info(name) for name in licenses],
                    "clientEntity": {"clientId": client["id"]}}
            action_id = f"commvault:{licenses[0]}:client:{subject.id}:release"
        spec = RequestSpec("POST", "/Client/License/Release", json=body)
        return Action(
            id=action_id, verb="release", provider=self.id, pool=licenses[0], subject=subject,
            license=",".join(licenses), phase=phase, frees=True,
            seat_delta=sum(c.seat_delta for c in changes), depends_on=depends_on,
            reason=reason, request=self.http.preview(spec), changes=tuple(changes),
            params={"kind": "release", "client_id": client["id"], "body": body,
                    "licenses": licenses},
        )

    def _info(self, name: str) -> dict[str, Any]:
        info = self._license_info.get(name)
        if info is not None:
            return {"platformType": info["platformType"], "license": dict(info["license"])}
        return {"platformType": self.connection.platform_types[0],
                "license": {"licenseType": None, "appType": None, "licenseName": name}}

    async def execute(self, action: Action) -> Outcome:
        params = action.params
        body = params["body"]
        if params["kind"] == "release" and "licensesInfo" in body and any(
                info["license"]["licenseType"] is None for info in body["licensesInfo"]):
            body = await self._completed_release_body(params)
        spec = RequestSpec("POST", "/Client/License/" + (
            "Reconfigure" if params["kind"] == "reapply" else "Release"), json=body)
        response = await self._call(spec, repeatable=action.repeatable)
        if not response.is_success:
            return Outcome(status=OutcomeStatus.FAILED, message=_describe(response))
        data = _json(response)
        code = int(data.get("errorCode", 0) or 0)
        if code == 0:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        if params["kind"] == "release" and code in self.connection.not_consumed_codes:
            return Outcome(status=OutcomeStatus.ALREADY, message="already released")
        return Outcome(status=OutcomeStatus.FAILED,
                       message=f"Commvault error {code}: {data.get('errorMessage', '')}")

    async def _completed_release_body(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A license first consumed by the re-apply: its types are known only now."""
        data = await self._get(f"/Client/{params['client_id']}/License")
        for info in data.get("licensesInfo", []):
            self._license_info[info["license"]["licenseName"]] = info
        return {"licensesInfo": [self._info(n) for n in params["licenses"]],
                "clientEntity": {"clientId": params["client_id"]}}

    async def confirm(self, action: Action) -> bool | None:
        data = await self._get(f"/Client/{action.params['client_id']}/License")
        held = {info["license"]["licenseName"] for info in data.get("licensesInfo", [])}
        if action.params["kind"] == "reapply":
            return set(action.params["expect"]) <= held
        return not (set(action.params["licenses"]) & held)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise VendorError(f"Commvault answered HTTP {response.status_code} with a non-JSON "
                          "body") from None
    if not isinstance(data, dict):
        raise VendorError("Commvault answered with an unexpected JSON shape")
    return data


def _describe(response: httpx.Response) -> str:
    message = json_object(response).get("errorMessage")
    return f"HTTP {response.status_code}" + (f": {message}" if message else "")
