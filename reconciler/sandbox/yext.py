"""Simulator of the Yext license-packs API (v2), written from Yext's documentation.

Paths, parameters and the `{meta: {uuid, errors}, response}` envelope are Yext's.
The error *codes* below are the sandbox's own (Yext documents the envelope, not
these particular numbers); the provider keys its idempotence on them, and the
README's vendor-assumptions table lists them.

Shapes follow the Licenses API reference and its OpenAPI spec: `licenseAssignments[]`
carry `licensePack` as the pack *object* `{id, name, total, assigned, available, notes}`;
creating or updating an assignment answers one such `LicenseAssignment`; deleting answers
an empty `response`.

Rules enforced, as the real API does:
- `v` is required and must be a valid YYYYMMDD date;
- `api_key` (query) or `api-key` (header): missing → 400 (as Yext documents), unknown
  → 401;
- unknown paths → 404 and wrong methods → 405, both in the envelope with `meta.errors`;
- unknown account, pack or entity → 404; assigning beyond `available` → 400;
- `pageToken` is opaque and only valid for the query that produced it;
- an expiration date removes the assignment at the start of that day;
- the hourly request quota and its `Rate-Limit-*` headers, when turned on (seed
  `quota:` or `PUT /_sandbox/quota`): see `yext_quota`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import ADMIN_PREFIX, Simulator
from reconciler.sandbox.yext_quota import Quota, QuotaGate, QuotaSettings, settings_endpoint

CODE_MISSING_VERSION = 1001
CODE_UNAUTHORIZED = 1002
CODE_BAD_PAGE_TOKEN = 1003
CODE_BAD_BODY = 1004
CODE_UNKNOWN_PATH = 1005
CODE_METHOD_NOT_ALLOWED = 1006
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
CODE_NOT_FOUND_ACCOUNT = 2000
CODE_NOT_FOUND_PACK = 2001
CODE_NOT_FOUND_ENTITY = 2002
CODE_NOT_ASSIGNED = 2003
CODE_ALREADY_ASSIGNED = 2004
CODE_NO_AVAILABLE_LICENSE = 2005
CODE_BAD_DATE = 2006


class YextError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)


def envelope(
    response: Any, status: int = 200, errors: list[dict[str, Any]] | None = None
) -> Response:
    meta = {"uuid": str(uuid.uuid4()), "errors": errors or []}
    return JSONResponse({"meta": meta, "response": response}, status_code=status)


def error_response(error: YextError) -> Response:
    body = {"name": "", "code": error.code, "type": "FATAL_ERROR", "message": error.message}
    return envelope({}, error.status, [body])


class YextSimulator(Simulator):
    name = "yext"
    seed_resource = "yext.yaml"
    environment: ClassVar[dict[str, str]] = {"api_key_env": "sandbox-yext-api-key"}

    def __init__(self, seed: dict[str, Any] | None = None, state_dir: Path | None = None) -> None:
        self._swept: dict[str, str] = {}
        self.clock = time.time
        """Epoch seconds for the quota window (a test may replace it)."""
        super().__init__(seed, state_dir)
        self.quota = Quota(QuotaSettings.model_validate(self.seed.get("quota") or {}),
                           lambda: self.clock())
        self.app = QuotaGate(self.quota, self.app, self.record, ADMIN_PREFIX)

    def admin_routes(self) -> list[BaseRoute]:
        async def quota(request: Request) -> Response:
            return await settings_endpoint(self.quota, request)

        return [Route(f"{ADMIN_PREFIX}/quota", quota, methods=["GET", "PUT"])]

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        self._swept.clear()
        accounts: dict[str, Any] = {}
        for account_id, account in (seed.get("accounts") or {}).items():
            accounts[account_id] = {
                "packs": {pack["id"]: dict(pack) for pack in account.get("packs", [])},
                "entities": sorted(account.get("entities", [])),
                "assignments": {
                    pack: dict(holders or {})
                    for pack, holders in (account.get("assignments") or {}).items()
                },
            }
        return {"accounts": accounts}

    def routes(self) -> list[BaseRoute]:
        base = "/v2/accounts/{accountId}/license-packs"
        return [
            Route(base, self._guarded(self.list_packs), methods=["GET"]),
            Route(
                base + "/{licensePackId}/assigned-entities",
                self._guarded(self.list_assignments),
                methods=["GET"],
            ),
            Route(
                base + "/{licensePackId}/assigned-entities/{entityId}",
                self._guarded(self.change_assignment),
                methods=["POST", "PUT", "DELETE"],
            ),
            # Last: whatever no route above answered, in Yext's envelope.
            Route("/{rest:path}", self.unrouted, methods=ALL_METHODS),
        ]

    async def unrouted(self, request: Request) -> Response:
        """A path no route serves is 404; a known path with another method is 405."""
        for route in self.routes()[:-1]:
            if isinstance(route, Route) and route.path_regex.match(request.url.path):
                return error_response(YextError(
                    405, CODE_METHOD_NOT_ALLOWED,
                    f"Method {request.method} is not allowed on {request.url.path}"))
        return error_response(YextError(404, CODE_UNKNOWN_PATH,
                                        f"Unknown path: {request.url.path}"))

    # ---- request guards ----------------------------------------------------------
    def _guarded(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                self._check_version(request)
                self._check_key(request)
                return await handler(request)  # type: ignore[no-any-return]
            except YextError as error:
                return error_response(error)

        return endpoint

    @staticmethod
    def _check_version(request: Request) -> None:
        version = request.query_params.get("v")
        if not version:
            raise YextError(400, CODE_MISSING_VERSION, "Missing required parameter: v")
        try:
            dt.datetime.strptime(version, "%Y%m%d")
        except ValueError:
            raise YextError(
                400, CODE_MISSING_VERSION, f"Invalid v parameter '{version}': expected YYYYMMDD"
            ) from None

    def _check_key(self, request: Request) -> None:
        key = request.query_params.get("api_key") or request.headers.get("api-key")
        if not key:
            raise YextError(400, CODE_UNAUTHORIZED, "Missing required parameter: api_key")
        if key not in self.seed.get("api_keys", []):
            raise YextError(401, CODE_UNAUTHORIZED, "Invalid api_key")

    # ---- state helpers -------------------------------------------------------------
    def _account(self, request: Request) -> dict[str, Any]:
        account_id = request.path_params["accountId"]
        account = self.state["accounts"].get(account_id)
        if account is None:
            raise YextError(404, CODE_NOT_FOUND_ACCOUNT, f"Account not found: {account_id}")
        self._expire(account_id, account)
        assert isinstance(account, dict)
        return account

    def _expire(self, account_id: str, account: dict[str, Any]) -> None:
        """Removes assignments whose expiration day has begun (swept once a day: only
        future dates can be set, so nothing new expires before tomorrow)."""
        today = dt.date.today().isoformat()
        if self._swept.get(account_id) == today:
            return
        self._swept[account_id] = today
        for holders in account["assignments"].values():
            for entity, expires in list(holders.items()):
                if expires is not None and expires <= today:
                    del holders[entity]

    @staticmethod
    def _pack(account: dict[str, Any], pack_id: str) -> dict[str, Any]:
        pack = account["packs"].get(pack_id)
        if pack is None:
            raise YextError(404, CODE_NOT_FOUND_PACK, f"License pack not found: {pack_id}")
        assert isinstance(pack, dict)
        return pack

    def _page(self, request: Request, total: int) -> tuple[int, int]:
        """(start, size) from pageSize/pageToken; the token is bound to the query."""
        limit = int(self.seed.get("max_page_size", 50))
        raw_size = request.query_params.get("pageSize")
        try:
            size = limit if raw_size is None else max(1, min(int(raw_size), limit))
        except ValueError:
            raise YextError(400, CODE_BAD_PAGE_TOKEN, f"Invalid pageSize: {raw_size}") from None
        token = request.query_params.get("pageToken")
        if not token:
            return 0, size
        try:
            decoded = json.loads(base64.urlsafe_b64decode(token.encode()).decode())
            start = int(decoded["offset"])
            if decoded["query"] != _query_digest(request):
                raise ValueError("token of another query")
        except (ValueError, KeyError, TypeError):
            raise YextError(400, CODE_BAD_PAGE_TOKEN, "Invalid pageToken") from None
        return start, size

    @staticmethod
    def _next_token(request: Request, end: int, total: int) -> dict[str, str]:
        if end >= total:
            return {}
        raw = json.dumps({"offset": end, "query": _query_digest(request)})
        return {"nextPageToken": base64.urlsafe_b64encode(raw.encode()).decode()}

    # ---- endpoints ---------------------------------------------------------------------
    async def list_packs(self, request: Request) -> Response:
        account = self._account(request)
        packs = [account["packs"][pack_id] for pack_id in sorted(account["packs"])]
        start, size = self._page(request, len(packs))
        rows = [_pack_row(account, pack) for pack in packs[start : start + size]]
        return envelope(
            {"licensePacks": rows, **self._next_token(request, start + size, len(packs))}
        )

    async def list_assignments(self, request: Request) -> Response:
        account = self._account(request)
        pack_id = request.path_params["licensePackId"]
        pack_ids = sorted(account["packs"]) if pack_id == "-" else [pack_id]
        if pack_id != "-":
            self._pack(account, pack_id)
        wanted = request.query_params.get("assignedEntity")
        flat = [
            (pack, entity, expires)
            for pack in pack_ids
            for entity, expires in sorted(account["assignments"].get(pack, {}).items())
            if wanted is None or entity == wanted
        ]
        start, size = self._page(request, len(flat))
        grouped: dict[str, list[dict[str, Any]]] = {}
        for pack, entity, expires in flat[start : start + size]:
            row = {"entityId": entity} if expires is None else {
                "entityId": entity, "expirationDate": expires}
            grouped.setdefault(pack, []).append(row)
        rows = [
            {"licensePack": _pack_row(account, account["packs"][p]), "assignedEntities": e}
            for p, e in grouped.items()
        ]
        return envelope(
            {"licenseAssignments": rows, **self._next_token(request, start + size, len(flat))}
        )

    async def change_assignment(self, request: Request) -> Response:
        account = self._account(request)
        pack_id = request.path_params["licensePackId"]
        entity_id = request.path_params["entityId"]
        pack = self._pack(account, pack_id)
        if entity_id not in account["entities"]:
            raise YextError(404, CODE_NOT_FOUND_ENTITY, f"Entity not found: {entity_id}")
        holders: dict[str, Any] = account["assignments"].setdefault(pack_id, {})
        if request.method == "POST":
            if entity_id in holders:
                raise YextError(
                    409,
                    CODE_ALREADY_ASSIGNED,
                    f"Entity {entity_id} already holds a license from pack {pack_id}",
                )
            if len(holders) >= pack["total"]:
                raise YextError(
                    400,
                    CODE_NO_AVAILABLE_LICENSE,
                    f"No available licenses in pack {pack_id} ({pack['total']} of "
                    f"{pack['total']} assigned)",
                )
            holders[entity_id] = None
            return envelope(_assignment(account, pack, entity_id, None))
        if entity_id not in holders:
            raise YextError(
                404,
                CODE_NOT_ASSIGNED,
                f"Entity {entity_id} holds no license from pack {pack_id}",
            )
        if request.method == "DELETE":
            del holders[entity_id]
            return envelope({})
        holders[entity_id] = await self._expiration(request)
        return envelope(_assignment(account, pack, entity_id, holders[entity_id]))

    @staticmethod
    async def _expiration(request: Request) -> str | None:
        raw = await request.body()
        if not raw.strip():
            return None
        try:
            body = json.loads(raw)
        except ValueError:
            raise YextError(400, CODE_BAD_BODY, "Request body is not valid JSON") from None
        if not isinstance(body, dict) or set(body) - {"expirationDate"}:
            raise YextError(400, CODE_BAD_BODY, "Body accepts only expirationDate")
        value = body.get("expirationDate")
        if value is None:
            return None
        try:
            day = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise YextError(
                400, CODE_BAD_DATE, f"Invalid expirationDate '{value}': expected YYYY-MM-DD"
            ) from None
        if day <= dt.date.today():
            raise YextError(400, CODE_BAD_DATE, f"expirationDate {value} is not in the future")
        return day.isoformat()


def _pack_row(account: dict[str, Any], pack: dict[str, Any]) -> dict[str, Any]:
    """A `LicensePack` as the reference documents it (also nested in assignments)."""
    assigned = len(account["assignments"].get(pack["id"], {}))
    return {
        "id": pack["id"],
        "name": pack.get("name", ""),
        "total": pack["total"],
        "assigned": assigned,
        "available": pack["total"] - assigned,
        "notes": pack.get("notes", ""),
    }


def _assignment(
    account: dict[str, Any], pack: dict[str, Any], entity_id: str, expires: str | None
) -> dict[str, Any]:
    """A `LicenseAssignment`: the answer to create and update."""
    row: dict[str, Any] = {"entityId": entity_id}
    if expires is not None:
        row["expirationDate"] = expires
    return {"licensePack": _pack_row(account, pack), "assignedEntities": [row]}


def _query_digest(request: Request) -> str:
    """Which query a page token belongs to: path plus filters, not the paging keys."""
    relevant = sorted(
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in {"pageToken", "pageSize", "api_key", "v"}
    )
    return hashlib.sha256(json.dumps([request.url.path, relevant]).encode()).hexdigest()[:12]
