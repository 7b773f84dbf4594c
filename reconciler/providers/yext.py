"""Yext license packs: which entities hold a license from which pack.

A pack is the pool and the license: an entity either holds a seat of it or not,
optionally with an expiration date (a scheduled removal). Reads are two paged
list calls for the whole account; changes are one call per entity and pack.

Inferred (see README, "vendor assumptions"): the error codes that mean "already
assigned" and "not assigned"; they live in `ALREADY_CODES` and can be overridden
in the connection settings.

Quota: 5,000 Management API requests an hour (Yext's "Monitoring App Usage": "The
Management API is capped at 5,000 requests per hour"); see `_send`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence
from typing import Any

import httpx
from pydantic import Field

from reconciler.errors import VendorError
from reconciler.http import QuotaUsed, json_object
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
    PHASE_UPDATE,
    Connection,
    Provider,
    fingerprint,
)

ALREADY_ASSIGNED_CODES = (2004,)
NOT_ASSIGNED_CODES = (2003,)


class YextConnection(Connection):
    """How to reach one Yext account."""

    account_id: str = "me"
    api_key_env: str
    api_version: str = Field(default="20240101", pattern=r"^\d{8}$")
    page_size: int = Field(default=50, ge=1, le=1000)
    already_assigned_codes: tuple[int, ...] = ALREADY_ASSIGNED_CODES
    not_assigned_codes: tuple[int, ...] = NOT_ASSIGNED_CODES


class YextProvider(Provider):
    id = "yext"
    connection_model = YextConnection
    default_base_url = "https://api.yextapis.com"
    subject_kinds = frozenset({"entity"})
    path_kinds = frozenset({"entity"})
    licenses_in_path = True

    connection: YextConnection

    # ---- requests ------------------------------------------------------------------
    def _packs(self, *more: str, query: dict[str, str] | None = None,
               method: Any = "GET", body: Any = None) -> Call:
        """A call under `/v2/accounts/{account}/license-packs`, one segment per id."""
        return Call.to(method, "v2", "accounts", self.connection.account_id, "license-packs",
                       *more, query={"v": self.connection.api_version, **(query or {})},
                       body=body)

    def _assignment(self, method: Any, pack: str, entity: str, body: Any = None) -> Call:
        return self._packs(pack, "assigned-entities", entity, method=method, body=body)

    async def _send(self, call: Call, *, repeatable: bool) -> httpx.Response:
        """The API key goes in the query at send time; it is never part of a call.

        Yext caps the Management API per hour (5,000 requests) and says on every answer
        how much is left and when the hour restarts (`Rate-Limit-*`). The HTTP layer waits
        for a reset within `limits.retry_budget` and otherwise sends nothing more; this
        names that stop in Yext's terms."""
        api_key = self.secrets.get(self.connection.api_key_env)
        try:
            return await self.http.send(call, repeatable=repeatable, query={"api_key": api_key})
        except QuotaUsed as used:
            raise QuotaUsed(f"yext: hourly quota used; quota resets at {used.resets_at_utc} "
                            f"(UTC)", used.resets_at) from None

    async def _get_pages(self, *more: str, key: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            extra = {"pageSize": str(self.connection.page_size)}
            if token:
                extra["pageToken"] = token
            response = await self._send(self._packs(*more, query=extra), repeatable=True)
            body = _unwrap(response)
            rows.extend(body.get(key, []))
            token = body.get("nextPageToken")
            if not token:
                return rows

    # ---- facts ---------------------------------------------------------------------
    async def read(self, desired: ProviderDesired) -> CurrentState:
        """One paged list of packs, then each pack's assignments, packs read concurrently.

        Page tokens make one list sequential; listing per pack (instead of `-` for
        all packs) lets the packs' pages travel in parallel, within the limits.
        """
        packs = {str(pack["id"]): pack for pack in await self._get_pages(key="licensePacks")}
        per_pack = await asyncio.gather(
            *(
                self._get_pages(pack_id, "assigned-entities", key="licenseAssignments")
                for pack_id in packs
            )
        )
        return await off_loop(self._state, packs, per_pack)

    def _state(self, packs: dict[str, dict[str, Any]],
               per_pack: list[list[dict[str, Any]]]) -> CurrentState:
        """The state the packs and their assignments describe (built off the event loop)."""
        holders: dict[str, list[tuple[str, str | None]]] = {pack_id: [] for pack_id in packs}
        for groups in per_pack:
            for group in groups:
                for row in group.get("assignedEntities", []):
                    holders.setdefault(pack_id_of(group), []).append(
                        (row["entityId"], row.get("expirationDate"))
                    )
        grants = [
            Grant(
                provider=self.id,
                pool=pack_id,
                subject=Subject(kind="entity", id=entity),
                license=pack_id,
                expires=dt.date.fromisoformat(expires) if expires else None,
            )
            for pack_id, rows in holders.items()
            for entity, expires in rows
        ]
        pools = [
            PoolState(
                provider=self.id,
                id=pack_id,
                name=pack.get("name", ""),
                capacity=int(pack["total"]),
                used=int(pack.get("assigned", len(holders[pack_id]))),
            )
            for pack_id, pack in packs.items()
        ]
        fingerprints = {
            pack_id: fingerprint([pack["total"], sorted(holders[pack_id], key=str)])
            for pack_id, pack in packs.items()
        }
        return CurrentState(
            provider=self.id,
            grants=tuple(sorted(grants, key=lambda g: g.key)),
            pools=tuple(pools),
            fingerprints=fingerprints,
        )

    # ---- operations ----------------------------------------------------------------
    def actions(self, changes: Sequence[Change], current: CurrentState) -> list[Action]:
        planned: list[Action] = []
        for change in changes:
            grant = change.grant
            entity = grant.subject.id
            base_id = f"yext:{grant.pool}:entity:{entity}"
            if change.kind is ChangeKind.REMOVE:
                call = self._assignment("DELETE", grant.pool, entity)
                planned.append(
                    self._action(change, f"{base_id}:remove", "remove", PHASE_FREE, call)
                )
                continue
            if change.kind is ChangeKind.ADD:
                call = self._assignment("POST", grant.pool, entity)
                assign = self._action(change, f"{base_id}:assign", "assign", PHASE_TAKE, call)
                planned.append(assign)
                if grant.expires is not None:
                    planned.append(
                        self._expiry_action(change, base_id, PHASE_TAKE + 10, (assign.id,))
                    )
                continue
            planned.append(self._expiry_action(change, base_id, PHASE_UPDATE, ()))
        return planned

    def _expiry_action(
        self, change: Change, base_id: str, phase: int, depends_on: tuple[str, ...]
    ) -> Action:
        grant = change.grant
        expires = grant.expires.isoformat() if grant.expires else None
        call = self._assignment("PUT", grant.pool, grant.subject.id, {"expirationDate": expires})
        action = self._action(change, f"{base_id}:expiry", "update", phase, call)
        return action.model_copy(
            update={
                "depends_on": depends_on,
                "seat_delta": 0,
                "reason": f"{change.reason}; expires {expires or 'never'}",
            }
        )

    def _action(
        self, change: Change, action_id: str, verb: Any, phase: int, call: Call
    ) -> Action:
        grant = change.grant
        return Action(
            id=action_id,
            verb=verb,
            provider=self.id,
            pool=grant.pool,
            subject=grant.subject,
            license=grant.license,
            phase=phase,
            frees=verb == "remove",
            seat_delta=change.seat_delta,
            reason=change.reason,
            request=self.http.preview(call),
            changes=(change,),
            call=call,
        )

    async def execute(self, action: Action) -> Outcome:
        method = action.call.method
        response = await self._send(action.call, repeatable=action.repeatable)
        meta = _meta(response)
        codes = {error.get("code") for error in meta.get("errors", [])}
        request_id = str(meta.get("uuid")) if meta.get("uuid") else None
        if response.is_success:
            return Outcome(status=OutcomeStatus.SUCCEEDED, vendor_request_id=request_id)
        if method == "POST" and codes & set(self.connection.already_assigned_codes):
            return Outcome(
                status=OutcomeStatus.ALREADY,
                message="already assigned",
                vendor_request_id=request_id,
            )
        if method == "DELETE" and codes & set(self.connection.not_assigned_codes):
            return Outcome(
                status=OutcomeStatus.ALREADY,
                message="already removed",
                vendor_request_id=request_id,
            )
        return Outcome(
            status=OutcomeStatus.FAILED, message=_describe(response), vendor_request_id=request_id
        )

    async def confirm(self, action: Action) -> bool | None:
        """Lists the action's pack (paged) to see whether the change landed for its entity."""
        entity = action.subject.id
        rows = await self._get_pages(
            action.pool, "assigned-entities", key="licenseAssignments"
        )
        held = {
            row["entityId"]: row.get("expirationDate")
            for group in rows
            for row in group.get("assignedEntities", [])
        }
        if action.call.method == "POST":
            return entity in held
        if action.call.method == "DELETE":
            return entity not in held
        wanted = (action.call.body or {}).get("expirationDate")
        return entity in held and held[entity] == wanted


def pack_id_of(group: dict[str, Any]) -> str:
    """A group's pack id: the reference documents `licensePack` as an object
    (`{id, name, total, ...}`); older answers carried the bare id."""
    pack = group.get("licensePack")
    if isinstance(pack, dict):
        return str(pack["id"])
    return str(pack)


def _meta(response: httpx.Response) -> dict[str, Any]:
    meta = json_object(response).get("meta")
    return meta if isinstance(meta, dict) else {}


def _describe(response: httpx.Response) -> str:
    errors = _meta(response).get("errors", [])
    if errors:
        return (
            "; ".join(f"Yext error {e.get('code')}: {e.get('message', '')}".strip() for e in errors)
            + f" (HTTP {response.status_code})"
        )
    return f"HTTP {response.status_code} from Yext"


def _unwrap(response: httpx.Response) -> dict[str, Any]:
    """The `response` part of a successful envelope; a clear VendorError otherwise."""
    if not response.is_success:
        raise VendorError(_describe(response), status=response.status_code)
    try:
        body = response.json()
    except ValueError:
        raise VendorError(
            f"Yext answered HTTP {response.status_code} with a non-JSON body"
        ) from None
    inner = body.get("response") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        raise VendorError("Yext answered without a `response` object")
    return inner
