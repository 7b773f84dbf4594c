"""The sandbox's Microsoft Graph v1.0, written from Microsoft's published reference alone.

It shares no code with `reconciler_msgraph.provider` (no imports either way), so it
cannot agree with the provider's mistakes. What it serves, and the reference page
each part follows (https://learn.microsoft.com/en-us/graph/api/...):

- `POST /{tenant}/oauth2/v2.0/token`: client credentials (the Microsoft identity
  platform's client-credentials flow); tokens expire after `token_lifetime_s`;
- `GET /subscribedSkus` (`subscribedsku-list`): `prepaidUnits.enabled`, `consumedUnits`
  counted from every user holding the SKU directly or through a group;
- `GET /users`, `GET /users/{id | userPrincipalName}` (`user-list`, `user-get`): `$select`,
  `$top`, paged by an absolute `@odata.nextLink` carrying `$skiptoken`;
- `GET /groups`, `GET /groups/{id}` (`group-list`); `GET /groups/{id}/members`
  (`group-list-members`): the direct members, each with its `@odata.type`, paged alike;
- `POST /users/{id}/assignLicense`, `POST /groups/{id}/assignLicense`
  (`user-assignlicense`, `group-assignlicense`): all-or-nothing, with Graph's rules:
  `usageLocation` required, no seats left refused, a licence inherited from a group
  cannot be removed from the user;
- `POST /$batch` (JSON batching): at most 20 requests, each answered with its own status;
- errors in Graph's envelope `{"error": {"code", "message", "innerError"}}`.

Sandbox-only: `PUT /_sandbox/batch-throttle {"items": N}` answers the next N batch
items 429 with `Retry-After` (Graph throttles items inside a batch one by one);
`POST /_sandbox/expire-tokens` expires every token issued so far.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

GRAPH = "/v1.0"
MAX_BATCH = 20
NAMESPACE = uuid.UUID("5b7f3c1e-0d7e-4c55-9d43-1a9a3c1f7e21")
DEFAULT_USER_FIELDS = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                       "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                       "userPrincipalName", "id")
DEFAULT_GROUP_FIELDS = ("id", "displayName", "description", "mail", "securityEnabled",
                        "createdDateTime", "groupTypes")


def object_id(name: str) -> str:
    """A stable object id for a seed entry that gives none (Graph ids are GUIDs)."""
    return str(uuid.uuid5(NAMESPACE, name))


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def envelope(error: GraphError) -> dict[str, Any]:
    """Graph's error body (https://learn.microsoft.com/en-us/graph/errors)."""
    return {"error": {"code": error.code, "message": error.message, "innerError": {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}}}


def _not_found(what: str) -> GraphError:
    return GraphError(404, "Request_ResourceNotFound",
                      f"Resource '{what}' does not exist or one of its queried "
                      "reference-property objects are not present.")


class GraphSimulator(Simulator):
    name = "msgraph"
    seed_resource = "msgraph.yaml"
    base_path = GRAPH
    environment: ClassVar[dict[str, str]] = {
        "tenant_env": "contoso.onmicrosoft.com",
        "client_id_env": "sandbox-msgraph-client",
        "client_secret_env": "sandbox-msgraph-secret",
    }
    secondary_urls: ClassVar[tuple[str, ...]] = ("login_url_env",)

    def __init__(self, seed: dict[str, Any] | None = None, state_dir: Any = None) -> None:
        self._tokens: dict[str, float] = {}
        super().__init__(seed, state_dir)

    @staticmethod
    def holdings(state: dict[str, Any]) -> set[tuple[str, str, int | None]]:
        """(user UPN or group id, skuPartNumber, None) for every direct assignment: the
        conformance kit's crash property reads the vendor's truth through this."""
        part = {sku_id: sku["skuPartNumber"] for sku_id, sku in state["skus"].items()}
        held = {(user["userPrincipalName"], part[sku], None)
                for user in state["users"].values() for sku in user["direct"]}
        return held | {(group_id, part[sku], None)
                       for group_id, group in state["groups"].items() for sku in group["licenses"]}

    # ---- state -----------------------------------------------------------------------
    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        skus: dict[str, Any] = {}
        by_part: dict[str, str] = {}
        for sku in seed.get("skus") or []:
            sku_id = sku.get("skuId") or object_id(sku["skuPartNumber"])
            plans = [{"servicePlanId": p.get("servicePlanId") or object_id(p["servicePlanName"]),
                      "servicePlanName": p["servicePlanName"]}
                     for p in sku.get("servicePlans") or []]
            skus[sku_id] = {"skuPartNumber": sku["skuPartNumber"],
                            "enabled": int(sku["enabled"]), "servicePlans": plans}
            by_part[sku["skuPartNumber"]] = sku_id

        def assigned(licenses: Mapping[str, Any] | None) -> dict[str, list[str]]:
            out: dict[str, list[str]] = {}
            for part, spec in (licenses or {}).items():
                sku_id = by_part[part]
                names = set((spec or {}).get("disabledPlans") or [])
                out[sku_id] = sorted(p["servicePlanId"] for p in skus[sku_id]["servicePlans"]
                                     if p["servicePlanName"] in names)
            return out

        users: dict[str, Any] = {}
        upn_ids: dict[str, str] = {}
        for user in seed.get("users") or []:
            upn = user["userPrincipalName"]
            user_id = user.get("id") or object_id(upn)
            users[user_id] = {"userPrincipalName": upn,
                              "displayName": user.get("displayName", upn.split("@")[0]),
                              "usageLocation": user.get("usageLocation"),
                              "direct": assigned(user.get("licenses"))}
            upn_ids[upn.lower()] = user_id
        groups: dict[str, Any] = {}
        for group in seed.get("groups") or []:
            group_id = group.get("id") or object_id("group:" + group["displayName"])
            groups[group_id] = {"displayName": group["displayName"],
                                "members": [upn_ids[m.lower()] for m in group.get("members", [])],
                                "licenses": assigned(group.get("licenses"))}
        return {"skus": skus, "users": users, "groups": groups,
                "throttle_batch_items": int(seed.get("throttle_batch_items", 0))}

    def _consumed(self, sku_id: str) -> int:
        return sum(1 for user_id in self.state["users"] if sku_id in self._effective(user_id))

    def _inherited(self, user_id: str) -> dict[str, list[str]]:
        """skuId → ids of the groups the user inherits it from."""
        found: dict[str, list[str]] = {}
        for group_id, group in sorted(self.state["groups"].items()):
            if user_id in group["members"]:
                for sku_id in group["licenses"]:
                    found.setdefault(sku_id, []).append(group_id)
        return found

    def _effective(self, user_id: str) -> set[str]:
        return set(self.state["users"][user_id]["direct"]) | set(self._inherited(user_id))

    # ---- routing ---------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        return [
            Route("/{tenant}/oauth2/v2.0/token", self.token, methods=["POST"]),
            Route(f"{GRAPH}/$batch", self._guard(self.batch), methods=["POST"]),
            Route(f"{GRAPH}/{{rest:path}}", self._guard(self.single),
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        async def throttle(request: Request) -> Response:
            self.state["throttle_batch_items"] = int((await request.json()).get("items", 0))
            self.save()
            return JSONResponse({"items": self.state["throttle_batch_items"]})

        async def expire(_: Request) -> Response:
            for token in self._tokens:
                self._tokens[token] = 0.0
            return JSONResponse({"expired": len(self._tokens)})

        return [Route("/_sandbox/batch-throttle", throttle, methods=["PUT"]),
                Route("/_sandbox/expire-tokens", expire, methods=["POST"])]

    def _guard(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request.headers.get("authorization", ""))
                return await handler(request)  # type: ignore[no-any-return]
            except GraphError as error:
                return JSONResponse(envelope(error), error.status)
        return endpoint

    def _authorize(self, header: str) -> None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        if token in (self.seed.get("access_tokens") or []):
            return
        expires = self._tokens.get(token)
        if expires is None:
            raise GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.")
        if expires <= time.time():
            raise GraphError(401, "InvalidAuthenticationToken",
                             "Lifetime validation failed, the token is expired.")

    # ---- the identity platform ---------------------------------------------------------
    async def token(self, request: Request) -> Response:
        """Client credentials: https://learn.microsoft.com/en-us/entra/identity-platform/
        v2-oauth2-client-creds-grant-flow (errors are OAuth2's, not Graph's envelope)."""
        # application/x-www-form-urlencoded, parsed without python-multipart.
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        tenant = request.path_params["tenant"]

        def refuse(status: int, error: str, code: int, text: str) -> Response:
            return JSONResponse({"error": error, "error_description": f"AADSTS{code}: {text}",
                                 "error_codes": [code]}, status)

        if tenant not in (self.seed.get("tenants") or []):
            return refuse(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return refuse(400, "unsupported_grant_type", 70003,
                          "The app requested an unsupported grant type.")
        client_id = str(form.get("client_id") or "")
        clients = self.seed.get("clients") or {}
        if client_id not in clients:
            return refuse(400, "unauthorized_client", 700016,
                          f"Application with identifier '{client_id}' was not found.")
        if form.get("client_secret") != clients[client_id]:
            return refuse(401, "invalid_client", 7000215, "Invalid client secret provided.")
        if form.get("scope") != "https://graph.microsoft.com/.default":
            return refuse(400, "invalid_scope", 1002012,
                          "The provided value for scope is not valid.")
        lifetime = int(self.seed.get("token_lifetime_s", 3599))
        token = "sandbox." + secrets.token_urlsafe(24)
        self._tokens[token] = time.time() + lifetime
        return JSONResponse({"token_type": "Bearer", "expires_in": lifetime,
                             "ext_expires_in": lifetime, "access_token": token})

    # ---- Graph -------------------------------------------------------------------------
    async def single(self, request: Request) -> Response:
        body: Any = None
        payload = await request.body()
        if payload.strip():
            try:
                body = json.loads(payload)
            except ValueError:
                raise GraphError(400, "BadRequest",
                                 "Unable to read JSON request payload.") from None
        base = f"{request.url.scheme}://{request.url.netloc}{GRAPH}"
        raw = (request.scope.get("raw_path") or request.scope["path"].encode()).decode("latin-1")
        rest = raw.split("?", 1)[0][len(GRAPH):]
        status, answer = self.dispatch(request.method, rest,
                                       parse_qs(request.url.query), body, base)
        return JSONResponse(answer, status) if answer is not None else Response(status_code=status)

    async def batch(self, request: Request) -> Response:
        """JSON batching (https://learn.microsoft.com/en-us/graph/json-batching)."""
        try:
            body = json.loads(await request.body())
            items = body["requests"]
            assert isinstance(items, list)
        except (ValueError, KeyError, AssertionError, TypeError):
            raise GraphError(400, "BadRequest", "Invalid batch payload.") from None
        if len(items) > MAX_BATCH:
            raise GraphError(400, "BadRequest",
                             f"Number of batch request steps exceeds the maximum of {MAX_BATCH}.")
        ids = [str(item.get("id", "")) for item in items]
        if len(set(ids)) != len(ids) or "" in ids:
            raise GraphError(400, "BadRequest", "Batch request ids must be present and unique.")
        base = f"{request.url.scheme}://{request.url.netloc}{GRAPH}"
        responses = []
        for item in items:
            if self.state.get("throttle_batch_items", 0) > 0:
                self.state["throttle_batch_items"] -= 1
                error = GraphError(429, "TooManyRequests",
                                   "Too many requests, please retry after some time.")
                responses.append({"id": str(item["id"]), "status": 429,
                                  "headers": {"Retry-After": "0"}, "body": envelope(error)})
                continue
            split = urlsplit(str(item.get("url", "")))
            path = "/" + split.path.lstrip("/")
            status, answer = self.dispatch(str(item.get("method", "GET")).upper(), path,
                                           parse_qs(split.query), item.get("body"), base)
            responses.append({"id": str(item["id"]), "status": status,
                              "headers": {"Content-Type": "application/json"}, "body": answer})
        return JSONResponse({"responses": responses})

    def dispatch(self, method: str, path: str, query: dict[str, list[str]], body: Any,
                 base: str) -> tuple[int, Any]:
        """One Graph request (direct or a batch item) → (status, JSON body)."""
        segments = [unquote(s) for s in path.strip("/").split("/")]
        try:
            return self._route(method, segments, {k: v[-1] for k, v in query.items()}, body, base)
        except GraphError as error:
            return error.status, envelope(error)

    def _route(self, method: str, seg: list[str], query: dict[str, str], body: Any,
               base: str) -> tuple[int, Any]:
        match (method, seg):
            case ("GET", ["subscribedSkus"]):
                return 200, {"@odata.context": f"{base}/$metadata#subscribedSkus",
                             "value": [self._sku_row(k) for k in sorted(self.state["skus"])]}
            case ("GET", ["users"]):
                ids = sorted(self.state["users"])
                return 200, self._page(base, "users", ids, query, self._user_row)
            case ("GET", ["users", key]):
                return 200, self._user_row(self._user_id(key), query.get("$select"))
            case ("POST", ["users", key, "assignLicense"]):
                user_id = self._user_id(key)
                self._assign_user(user_id, body)
                return 200, self._user_row(user_id, None)
            case ("GET", ["groups"]):
                ids = sorted(self.state["groups"])
                return 200, self._page(base, "groups", ids, query, self._group_row)
            case ("GET", ["groups", key]):
                return 200, self._group_row(self._group_id(key), query.get("$select"))
            case ("GET", ["groups", key, "members"]):
                group_id = self._group_id(key)
                members = sorted(self.state["groups"][group_id]["members"])
                return 200, self._page(base, f"groups/{group_id}/members", members, query,
                                       self._member_row)
            case ("POST", ["groups", key, "assignLicense"]):
                group_id = self._group_id(key)
                self._assign_group(group_id, body)
                return 202, self._group_row(group_id, None)  # the reference: 202 Accepted
        if seg and seg[0] in {"users", "groups", "subscribedSkus"}:
            raise GraphError(405, "Request_BadRequest",
                             "Specified HTTP method is not allowed for the request target.")
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{seg[0]}'.")

    # ---- reads -----------------------------------------------------------------------
    def _page(self, base: str, kind: str, ids: list[str], query: dict[str, str],
              row: Any) -> dict[str, Any]:
        limit = int(self.seed.get("max_page_size", 999))
        try:
            top = min(int(query.get("$top", 100)), limit)
            start = int(query.get("$skiptoken", "0") or 0)
        except ValueError:
            raise GraphError(400, "Request_BadRequest", "Invalid paging parameter.") from None
        if top < 1:
            raise GraphError(400, "Request_BadRequest", "Invalid page size specified.")
        select = query.get("$select")
        page: dict[str, Any] = {"@odata.context": f"{base}/$metadata#{kind}",
                                "value": [row(i, select) for i in ids[start:start + top]]}
        if start + top < len(ids):
            more = {k: v for k, v in query.items() if k != "$skiptoken"}
            more["$skiptoken"] = str(start + top)
            text = "&".join(f"{k}={v}" for k, v in more.items())
            page["@odata.nextLink"] = f"{base}/{kind}?{text}"
        return page

    def _sku_row(self, sku_id: str) -> dict[str, Any]:
        sku = self.state["skus"][sku_id]
        tenant = (self.seed.get("tenants") or ["sandbox"])[0]
        return {"accountName": tenant, "accountId": object_id("account:" + tenant),
                "subscriptionIds": [object_id("subscription:" + sku_id)],
                "capabilityStatus": "Enabled", "appliesTo": "User",
                "consumedUnits": self._consumed(sku_id), "id": f"{object_id(tenant)}_{sku_id}",
                "prepaidUnits": {"enabled": sku["enabled"], "suspended": 0, "warning": 0,
                                 "lockedOut": 0},
                "servicePlans": [{**p, "provisioningStatus": "Success", "appliesTo": "User"}
                                 for p in sku["servicePlans"]],
                "skuId": sku_id, "skuPartNumber": sku["skuPartNumber"]}

    def _user_row(self, user_id: str, select: str | None) -> dict[str, Any]:
        user = self.state["users"][user_id]
        inherited = self._inherited(user_id)
        states = [{"assignedByGroup": None, "disabledPlans": plans, "error": "None",
                   "lastUpdatedDateTime": None, "skuId": sku, "state": "Active"}
                  for sku, plans in sorted(user["direct"].items())]
        for sku, groups in sorted(inherited.items()):
            states += [{"assignedByGroup": g, "disabledPlans":
                        self.state["groups"][g]["licenses"][sku], "error": "None",
                        "lastUpdatedDateTime": None, "skuId": sku, "state": "Active"}
                       for g in groups]
        effective: dict[str, list[str]] = {}
        for state in states:  # direct first: its disabled plans win for the summary
            effective.setdefault(state["skuId"], state["disabledPlans"])
        full = {"id": user_id, "userPrincipalName": user["userPrincipalName"],
                "displayName": user["displayName"], "usageLocation": user["usageLocation"],
                "mail": user["userPrincipalName"], "businessPhones": [], "givenName": None,
                "jobTitle": None, "mobilePhone": None, "officeLocation": None,
                "preferredLanguage": None, "surname": None,
                "assignedLicenses": [{"disabledPlans": plans, "skuId": sku}
                                     for sku, plans in sorted(effective.items())],
                "licenseAssignmentStates": states}
        return _selected(full, select, DEFAULT_USER_FIELDS)

    def _member_row(self, user_id: str, select: str | None) -> dict[str, Any]:
        """A direct member (group-list-members): a directoryObject, typed by `@odata.type`
        whatever `$select` says."""
        return {"@odata.type": "#microsoft.graph.user", **self._user_row(user_id, select)}

    def _group_row(self, group_id: str, select: str | None) -> dict[str, Any]:
        group = self.state["groups"][group_id]
        full = {"id": group_id, "displayName": group["displayName"], "description": None,
                "createdDateTime": "2024-01-01T00:00:00Z", "groupTypes": [],
                "mail": None, "securityEnabled": True,
                "assignedLicenses": [{"disabledPlans": plans, "skuId": sku}
                                     for sku, plans in sorted(group["licenses"].items())]}
        return _selected(full, select, DEFAULT_GROUP_FIELDS)

    def _user_id(self, key: str) -> str:
        if key in self.state["users"]:
            return key
        for user_id, user in self.state["users"].items():
            if user["userPrincipalName"].lower() == key.lower():
                return str(user_id)
        raise _not_found(key)

    def _group_id(self, key: str) -> str:
        if key in self.state["groups"]:
            return key
        raise _not_found(key)

    # ---- changes ---------------------------------------------------------------------
    def _parse_assign(self, body: Any) -> tuple[dict[str, list[str]], list[str]]:
        """`addLicenses` [{skuId, disabledPlans}] and `removeLicenses` [skuId], both required."""
        if not isinstance(body, dict) or not isinstance(body.get("addLicenses"), list) \
                or not isinstance(body.get("removeLicenses"), list):
            raise GraphError(400, "Request_BadRequest",
                             "Invalid value specified for property 'addLicenses' or "
                             "'removeLicenses' of resource 'User'.")
        adds: dict[str, list[str]] = {}
        for entry in body["addLicenses"]:
            sku_id = str((entry or {}).get("skuId", ""))
            sku = self.state["skus"].get(sku_id)
            if sku is None:
                raise _invalid_license(sku_id)
            known = {p["servicePlanId"] for p in sku["servicePlans"]}
            disabled = sorted({str(p) for p in entry.get("disabledPlans") or []})
            if set(disabled) - known:
                raise GraphError(400, "Request_BadRequest",
                                 f"Invalid service plan id for license {sku_id}.")
            adds[sku_id] = disabled
        removes = [str(r) for r in body["removeLicenses"]]
        for sku_id in removes:
            if sku_id not in self.state["skus"]:
                raise _invalid_license(sku_id)
        return adds, removes

    def _check_seats(self, sku_ids: list[str], newcomers: int) -> None:
        for sku_id in sku_ids:
            sku = self.state["skus"][sku_id]
            if self._consumed(sku_id) + newcomers > sku["enabled"]:
                raise GraphError(400, "Request_BadRequest",
                                 f"Subscription with SKU {sku_id} does not have any available "
                                 "licenses.")

    def _assign_user(self, user_id: str, body: Any) -> None:
        adds, removes = self._parse_assign(body)
        user = self.state["users"][user_id]
        if adds and not user["usageLocation"]:
            raise GraphError(400, "Request_BadRequest",
                             "License assignment cannot be done for user with invalid usage "
                             "location.")
        inherited = self._inherited(user_id)
        for sku_id in removes:
            if sku_id not in user["direct"]:
                if sku_id in inherited:
                    raise GraphError(400, "Request_BadRequest",
                                     "User license is inherited from a group membership and it "
                                     "cannot be removed directly from the user.")
                raise GraphError(400, "Request_BadRequest",
                                 "User does not have a corresponding license.")
        effective = self._effective(user_id)
        self._check_seats([s for s in adds if s not in effective], 1)
        for sku_id in removes:
            del user["direct"][sku_id]
        user["direct"].update(adds)

    def _assign_group(self, group_id: str, body: Any) -> None:
        adds, removes = self._parse_assign(body)
        group = self.state["groups"][group_id]
        for sku_id in removes:
            if sku_id not in group["licenses"]:
                raise GraphError(400, "Request_BadRequest",
                                 "Group does not have a corresponding license.")
        for sku_id in adds:
            if sku_id in group["licenses"]:
                continue
            newcomers = sum(1 for m in group["members"] if sku_id not in self._effective(m))
            self._check_seats([sku_id], newcomers)
        for sku_id in removes:
            del group["licenses"][sku_id]
        group["licenses"].update(adds)


def _invalid_license(sku_id: str) -> GraphError:
    return GraphError(400, "Request_BadRequest",
                      f"License {sku_id} does not correspond to a valid company License.")


def _selected(full: dict[str, Any], select: str | None, default: tuple[str, ...]) -> dict[str, Any]:
    fields = [f.strip() for f in select.split(",")] if select else list(default)
    unknown = [f for f in fields if f not in full]
    if unknown:
        raise GraphError(400, "Request_BadRequest",
                         f"Could not find a property named '{unknown[0]}' on type "
                         "'microsoft.graph.user'.")
    return {f: full[f] for f in fields}

