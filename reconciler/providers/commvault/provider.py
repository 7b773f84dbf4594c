"""Commvault Command Center: which licenses each client consumes from the CommCell.

A license name is a pool (the CommCell's seats of it); a client consumes a seat. One
`providers.commvault` block is one CommCell, so a pool needs no CommCell part
(`pool_of` cannot see the connection). What the plan does, and why, is in
`planning.py`; this module talks to the CommCell: log in, read, send, confirm.

A re-apply is not repeatable: once the releases after it have run, sending it again
consumes those seats again (and can take the CommCell's last seat from someone else).
It is sent at most once and crash recovery asks `confirm`, which reads the client's
licenses. Releases are repeatable: a second one answers "not consumed".

Client names never travel in a URL (requests carry the numeric clientId read from
`GET /Client`), so no subject kind is a path kind: a hostile name can at worst name a
client that does not exist, which `check` refuses with the YAML's file:line.
"""

from __future__ import annotations

import asyncio
import base64
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import httpx

from reconciler.errors import Problem, VendorError
from reconciler.http import json_object
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
from reconciler.providers.base import Provider, fingerprint
from reconciler.providers.commvault import planning
from reconciler.providers.commvault.connection import TOKEN_PREFIXES, CommvaultConnection
from reconciler.providers.commvault.facts import (
    ClientFacts,
    CommvaultFacts,
    LicenseType,
    parse_agents,
    parse_clients,
    parse_licenses,
)
from reconciler.secrets import REDACTOR


class CommvaultProvider(Provider):
    id = "commvault"
    connection_model = CommvaultConnection
    default_base_url = "https://localhost/commandcenter/api"
    subject_kinds = frozenset({"client"})

    connection: CommvaultConnection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._token: str | None = None  # the session token only: no vendor facts on self
        self._login_lock = asyncio.Lock()

    # ---- auth ------------------------------------------------------------------------
    async def _authtoken(self, *, refused: str | None = None) -> str:
        """The session token; after a 401, pass the `refused` token to get a new one.

        Calls refused at once (a session that timed out under a busy apply) log in once
        between them: whoever comes after the first renewal gets its token.
        """
        async with self._login_lock:
            if self._token is not None and self._token != refused:
                return self._token
            if self.connection.token_env is not None:
                token = self.secrets.get(self.connection.token_env)
                if not token.startswith(TOKEN_PREFIXES):
                    token = self.connection.token_prefix + token
                self._token = token
                return token
            self._token = await self._login()
            return self._token

    async def _login(self) -> str:
        """`POST /Login` with the base64 password; a refusal is an HTTP 200 with errList."""
        assert self.connection.username_env and self.connection.password_env
        username = self.secrets.get(self.connection.username_env, secret=False)
        password = self.secrets.get(self.connection.password_env)
        encoded = base64.b64encode(password.encode()).decode()
        REDACTOR.register(encoded)
        body = {"mode": 4, "username": username, "password": encoded, "clientType": 30}
        response = await self.http.send(Call.to("POST", "Login", body=body), repeatable=True,
                                        headers={"Accept": "application/json"})
        data = json_object(response)
        if "token" not in data:
            errors = data.get("errList") or [{}]
            first = errors[0] if isinstance(errors[0], dict) else {}
            reason = first.get("errLogMessage") or data.get("errorMessage") or "no token"
            raise VendorError(f"Commvault login failed: HTTP {response.status_code}: {reason}",
                              status=response.status_code)
        token = str(data["token"])
        REDACTOR.register(token)
        return token

    async def _send(self, call: Call, *, repeatable: bool) -> httpx.Response:
        """Sends `call` as is with the Authtoken header; on 401 logs in again once.

        An access token from the environment is not renewed: a 401 is returned as is.
        """
        refused: str | None = None
        while True:
            token = await self._authtoken(refused=refused)
            response = await self.http.send(
                call, repeatable=repeatable,
                headers={"Authtoken": token, "Accept": "application/json"})
            if response.status_code != 401 or self.connection.token_env is not None \
                    or refused is not None:
                return response
            refused = token

    async def _get(self, *segments: str | int, **query: str) -> dict[str, Any]:
        """A read; an `errorCode` in a 200 is an error too, never an empty answer.

        (A client deleted between the listing and its license read answers 200 with an
        errorCode: taken as "holds nothing", it would plan a re-apply.)
        """
        call = Call.to("GET", *segments, query=query)
        where = "/".join(str(s) for s in segments)
        response = await self._send(call, repeatable=True)
        if not response.is_success:
            raise VendorError(f"Commvault GET {where}: {describe(response)}",
                              status=response.status_code)
        data = _json(response, where)
        code = data.get("errorCode") or 0
        if code != 0:
            raise VendorError(f"Commvault GET {where}: error {code}: "
                              f"{data.get('errorMessage', '')}", code=str(code))
        return data

    # ---- facts -------------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        """Clients once, then each client's licenses (VendorHttp bounds the concurrency).

        Every client's licenses are read (a pool's `used` counts all of them: the
        vendor has no bulk license read); agents only of the named clients missing a
        declared license, the only ones a re-apply can be planned for (`planning`
        asks for no other client's agents).
        """
        named = {d.subject.id for d in desired.subjects if d.subject.kind == "client"}
        wanted: dict[str, set[str]] = defaultdict(set)
        for grant in desired.grants:
            if grant.subject.kind == "client":
                wanted[grant.subject.id].add(grant.license)
        listing = parse_clients(await self._get("Client"))

        async def one(client: tuple[int, str]) -> tuple[ClientFacts, dict[str, LicenseType]]:
            client_id, name = client
            licenses = parse_licenses(await self._get("Client", client_id, "License"))
            agents = None
            if name in named and not wanted.get(name, set()) <= licenses.keys():
                agents = parse_agents(await self._get("Agent", clientId=str(client_id)))
            facts = ClientFacts(id=client_id, name=name, licenses=tuple(sorted(licenses)),
                                agents=agents)
            return facts, licenses

        read = await self.http.each(one, listing)
        return await off_loop(self._state, read)

    def _state(self, read: list[tuple[ClientFacts, dict[str, LicenseType]]]) -> CurrentState:
        """The state every client's licenses describe (built off the event loop)."""
        clients = {facts.name: facts for facts, _ in read}
        types: dict[str, LicenseType] = {}
        for _, licenses in read:
            types.update(licenses)
        consumers: dict[str, list[str]] = defaultdict(list)
        grants = []
        for client in clients.values():
            for name in client.licenses:
                consumers[name].append(client.name)
                grants.append(Grant(provider=self.id, pool=name, license=name,
                                    subject=Subject(kind="client", id=client.name)))
        names = sorted(set(consumers) | set(self.connection.capacity)
                       | {n for ns in self.connection.agent_licenses.values() for n in ns})
        pools = [PoolState(provider=self.id, id=name, capacity=self.connection.capacity.get(name),
                           used=len(consumers.get(name, []))) for name in names]
        fingerprints = {name: fingerprint(sorted(consumers.get(name, []))) for name in names}
        fingerprints["clients"] = fingerprint(sorted(
            (c.name, c.id, [a.name for a in c.agents or ()]) for c in clients.values()))
        return CurrentState(provider=self.id, grants=tuple(sorted(grants, key=lambda g: g.key)),
                            pools=tuple(pools), fingerprints=fingerprints,
                            facts=CommvaultFacts(clients=clients, license_types=types))

    def check(self, desired: ProviderDesired, current: CurrentState,
              changes: Sequence[Change]) -> list[Problem]:
        return planning.problems(desired, current, self.connection)

    # ---- operations ----------------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        return planning.actions(changes, current, self.connection, self.http.preview)

    async def execute(self, action: Action) -> Outcome:
        """Sends `action.call` as built at plan time; errorCode ≠ 0 in a 200 is a failure."""
        response = await self._send(action.call, repeatable=action.repeatable)
        if not response.is_success:
            return Outcome(status=OutcomeStatus.FAILED, message=describe(response))
        data = json_object(response)
        try:
            code = int(data.get("errorCode", 0) or 0)
        except (TypeError, ValueError):
            return Outcome(status=OutcomeStatus.FAILED,
                           message=f"Commvault answered errorCode {data.get('errorCode')!r} "
                                   f"(HTTP {response.status_code}): {describe(response)}")
        if code == 0:
            return Outcome(status=OutcomeStatus.SUCCEEDED)
        if action.verb == "release" and code in self.connection.not_consumed_codes:
            return Outcome(status=OutcomeStatus.ALREADY, message="already released")
        return Outcome(status=OutcomeStatus.FAILED,
                       message=f"Commvault error {code}: {data.get('errorMessage', '')} "
                               f"(HTTP {response.status_code})")

    async def confirm(self, action: Action) -> bool | None:
        """Reads the client's licenses: a release is done when none of its licenses is
        held, a re-apply when every declared add is held."""
        client_id = client_id_of(action.call)
        if client_id is None:
            return None
        held = set(parse_licenses(await self._get("Client", client_id, "License")))
        if action.verb == "assign":
            return {c.grant.license for c in action.changes if c.kind is ChangeKind.ADD} <= held
        return not (released_by(action) & held)


def client_id_of(call: Call) -> int | None:
    """The clientId a release (`clientEntity`) or re-apply (`clientInfo`) names."""
    body = call.body if isinstance(call.body, dict) else {}
    for key in ("clientEntity", "clientInfo"):
        entity = body.get(key)
        if isinstance(entity, dict) and isinstance(entity.get("clientId"), int):
            return int(entity["clientId"])
    return None


def released_by(action: Action) -> set[str]:
    """The licenses a release gives back: its changes', and those its body names."""
    names = {c.grant.license for c in action.changes}
    body = action.call.body if isinstance(action.call.body, dict) else {}
    for info in body.get("licensesInfo", []):
        name = (info.get("license") or {}).get("licenseName") if isinstance(info, dict) else None
        if name:
            names.add(str(name))
    return names


def _json(response: httpx.Response, where: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise VendorError(f"Commvault GET {where}: HTTP {response.status_code} with a "
                          "non-JSON body") from None
    if not isinstance(data, dict):
        raise VendorError(f"Commvault GET {where}: answered with an unexpected JSON shape")
    return data


def describe(response: httpx.Response) -> str:
    """HTTP status and the vendor's message (errorMessage, or errList's errLogMessage)."""
    data = json_object(response)
    message = data.get("errorMessage")
    errors = data.get("errList")
    if not message and isinstance(errors, list) and errors and isinstance(errors[0], dict):
        message = errors[0].get("errLogMessage")
    return f"HTTP {response.status_code}" + (f": {message}" if message else "")
