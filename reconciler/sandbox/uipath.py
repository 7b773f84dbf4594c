"""Simulator of UiPath Automation Suite licensing (LRM and user licensing APIs).

Written from UiPath's API guide, never from reconciler's provider:
- host admins get a token by ROPC (`POST /api/account/authenticate`), organization
  admins by an external app (`POST /identity_/connect/token`, client credentials);
- organization and tenant allocations are host-level calls (host token); group and
  user allocations are organization-level calls (external-app token); the wrong kind
  of token gets 403, a missing, unknown or expired one 401;
- quantities are set, not added: a PUT states the new totals of the codes it lists;
- 404 when the level above holds no license of a code; 409 when a change exceeds the
  level above, or lowers a level below what the levels under it hold (a user holds
  one unit of each of its bundle codes; so does a group's allocation, a sandbox
  simplification: real consumption follows the members who sign in);
- the tenant call is `PUT .../service-license/{serviceScopeId}/{serviceType}` with
  `products` (the reference); the seed page's POST / `productQuantities` form is refused
  with a message naming the accepted one;
- `GET` on the same paths reads the current allocation (inferred: the portal's behaviour).

Sandbox-only: `POST /_sandbox/expire-tokens`.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

Handler = Callable[[Request], Awaitable[Response]]


class UiPathError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


class UiPathSimulator(Simulator):
    name = "uipath"
    seed_resource = "uipath.yaml"
    environment: ClassVar[dict[str, str]] = {
        "host_username_env": "admin",
        "host_password_env": "sandbox-uipath-host-password",
        "client_id_env": "reconciler-app",
        "client_secret_env": "sandbox-uipath-app-secret",
    }

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        organizations = {}
        for org in seed.get("organizations", []):
            organizations[org["id"]] = {
                "name": org["name"],
                "products": dict(org.get("products", {})),
                "tenants": {t["id"]: {"name": t["name"], "services": {
                    service: dict(products) for service, products in t.get("services", {}).items()
                }} for t in org.get("tenants", [])},
                "groups": {g["id"]: {"members": int(g.get("members", 1)),
                                     "bundles": list(g.get("bundles", []))}
                           for g in org.get("groups", [])},
                "users": {u["id"]: list(u.get("bundles", [])) for u in org.get("users", [])},
            }
        return {"host": dict(seed.get("host_license", {})), "organizations": organizations,
                "tokens": {}}

    def routes(self) -> list[BaseRoute]:
        host = "/lrm/api/host/{hostAccountId}/organization/{organizationId}/license"
        tenant = "/lrm/api/account/{accountId}/service-license/{serviceScopeId}/{serviceType}"
        group = "/lease_/api/account/{accountId}/user-license/group/{groupId}"
        users = "/lease_/api/account/{accountId}/user-license"
        return [
            Route("/api/account/authenticate", self.authenticate, methods=["POST"]),
            Route("/identity_/connect/token", self.client_token, methods=["POST"]),
            Route(host, self._guard("host", self.organization), methods=["GET", "PUT"]),
            Route(tenant, self._guard("host", self.tenant), methods=["GET", "PUT", "POST"]),
            Route(group, self._guard("app", self.group), methods=["GET", "PUT"]),
            Route(users, self._guard("app", self.users), methods=["GET", "PUT"]),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        async def expire(_: Request) -> Response:
            """Sandbox-only: every token issued so far expires now."""
            for token in self.state["tokens"].values():
                token["expires"] = 0
            return JSONResponse({"expired": len(self.state["tokens"])})

        return [Route("/_sandbox/expire-tokens", expire, methods=["POST"])]

    # ---- tokens --------------------------------------------------------------------------
    def _issue(self, kind: str, org: str | None = None) -> str:
        token = secrets.token_urlsafe(24)
        ttl = float(self.seed.get("token_ttl_s", 3600))
        self.state["tokens"][token] = {"kind": kind, "org": org, "expires": time.time() + ttl}
        return token

    async def authenticate(self, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        admins: dict[str, str] = self.seed.get("host_admins", {})
        if (not isinstance(body, dict) or body.get("TenancyName") != "Host"
                or admins.get(str(body.get("UsernameOrEmailAddress"))) != body.get("Password")):
            return JSONResponse({"result": None, "success": False, "error": {
                "code": 0, "message": "Invalid user name or password"}}, status_code=400)
        return JSONResponse({"result": self._issue("host"), "targetUrl": None,
                             "success": True, "error": None, "unAuthorizedRequest": False})

    async def client_token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
        apps: dict[str, Any] = self.seed.get("external_apps", {})
        app = apps.get(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
        if app is None or app.get("secret") != form.get("client_secret"):
            return JSONResponse({"error": "invalid_client"}, status_code=400)
        scopes = form.get("scope", "").split()
        if not scopes or set(scopes) - set(app.get("scopes", [])):
            return JSONResponse({"error": "invalid_scope"}, status_code=400)
        return JSONResponse({"access_token": self._issue("app"), "token_type": "Bearer",
                             "expires_in": int(self.seed.get("token_ttl_s", 3600)),
                             "scope": " ".join(scopes)})

    def _guard(self, kind: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("Authorization", "")
            token = self.state["tokens"].get(header.removeprefix("Bearer ").strip())
            if not header.startswith("Bearer ") or token is None or token["expires"] < time.time():
                return JSONResponse({"message": "Unauthorized: missing, unknown or expired "
                                                "token"}, status_code=401)
            if token["kind"] != kind:
                return JSONResponse({"message": f"Forbidden: this call needs a {kind} token"},
                                    status_code=403)
            try:
                return await handler(request)
            except UiPathError as error:
                return JSONResponse({"message": error.message}, status_code=error.status)

        return endpoint

    # ---- helpers -------------------------------------------------------------------------
    def _org(self, org_id: str) -> dict[str, Any]:
        org = self.state["organizations"].get(org_id)
        if org is None:
            raise UiPathError(404, f"Organization {org_id} not found")
        assert isinstance(org, dict)
        return org

    @staticmethod
    async def _json(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise UiPathError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise UiPathError(400, "Request body must be a JSON object")
        return body

    @staticmethod
    def _quantities(items: Any, field: str) -> dict[str, int]:
        if not isinstance(items, list):
            raise UiPathError(400, f"'{field}' must be a list of {{code, quantity}}")
        found: dict[str, int] = {}
        for item in items:
            if (not isinstance(item, dict) or not isinstance(item.get("code"), str)
                    or not isinstance(item.get("quantity"), int) or item["quantity"] < 0):
                raise UiPathError(400, f"'{field}' items need a code and a quantity >= 0")
            found[item["code"]] = item["quantity"]
        return found

    @staticmethod
    def _tenant_total(org: dict[str, Any], code: str, skip: tuple[str, str] | None = None) -> int:
        return sum(products.get(code, 0)
                   for tenant_id, tenant in org["tenants"].items()
                   for service, products in tenant["services"].items()
                   if (tenant_id, service) != skip)

    @staticmethod
    def _user_total(org: dict[str, Any], code: str) -> int:
        users = sum(1 for bundles in org["users"].values() if code in bundles)
        groups = sum(1 for g in org["groups"].values() if code in g["bundles"])
        return users + groups

    # ---- organization (host level) -------------------------------------------------------------
    async def organization(self, request: Request) -> Response:
        if request.path_params["hostAccountId"] != self.seed.get("host_account_id"):
            raise UiPathError(404, "Host account not found")
        org_id = request.path_params["organizationId"]
        org = self._org(org_id)
        if request.method == "PUT":
            wanted = self._quantities((await self._json(request)).get("productQuantities"),
                                      "productQuantities")
            for code, quantity in wanted.items():
                host = self.state["host"].get(code)
                if host is None:
                    raise UiPathError(404, f"The host has no license for {code}")
                others = sum(o["products"].get(code, 0)
                             for oid, o in self.state["organizations"].items() if oid != org_id)
                if others + quantity > host:
                    raise UiPathError(409, f"{code}: {others + quantity} would exceed the host's "
                                           f"{host}")
                below = self._tenant_total(org, code) + self._user_total(org, code)
                if quantity < below:
                    raise UiPathError(409, f"{code}: cannot set {quantity}, tenants, groups and "
                                           f"users of the organization hold {below}")
            org["products"].update(wanted)
        return JSONResponse({"productQuantities": [
            {"code": code, "quantity": qty} for code, qty in sorted(org["products"].items())]})

    # ---- tenant (host level) ---------------------------------------------------------------------
    async def tenant(self, request: Request) -> Response:
        if request.method == "POST":
            raise UiPathError(405, "Use PUT with a body {tenantName, products: [{code, "
                                   "quantity}]} to allocate licenses to a tenant")
        org = self._org(request.path_params["accountId"])
        tenant_id = request.path_params["serviceScopeId"]
        service = request.path_params["serviceType"]
        tenant = org["tenants"].get(tenant_id)
        if tenant is None:
            raise UiPathError(404, f"Tenant {tenant_id} not found")
        if request.method == "PUT":
            body = await self._json(request)
            if "productQuantities" in body:
                raise UiPathError(400, "Unknown field 'productQuantities': this endpoint takes "
                                       "'products' (and 'tenantName')")
            wanted = self._quantities(body.get("products"), "products")
            for code, quantity in wanted.items():
                held = org["products"].get(code, 0)
                if held == 0 and quantity > 0:
                    raise UiPathError(404, f"The organization has no license for {code}")
                others = self._tenant_total(org, code, skip=(tenant_id, service))
                if others + quantity > held:
                    raise UiPathError(409, f"{code}: tenants would hold {others + quantity}, "
                                           f"the organization has {held}")
            tenant["services"].setdefault(service, {}).update(wanted)
        products = tenant["services"].get(service, {})
        return JSONResponse({
            "accountId": request.path_params["accountId"], "serviceScopeId": tenant_id,
            "serviceType": service,
            "license": {"licenseCode": f"LIC-{tenant_id[:8]}", "bundleCode": "", "subscriptionCode":
                        "", "licenseStatus": "ACTIVE", "startDate": 0, "endDate": 0,
                        "gracePeriod": 0, "products": [
                            {"code": code, "quantity": qty, "type": "ROBOT", "features": []}
                            for code, qty in sorted(products.items())],
                        "templates": []},
            "userLicensingEnabled": True, "accountLicenseCode": f"ACC-{tenant_id[:8]}"})

    # ---- groups and users (organization level) ---------------------------------------------------
    def _check_bundles(self, org: dict[str, Any], bundles: Any, extra: dict[str, int]) -> list[str]:
        if not isinstance(bundles, list) or not all(isinstance(b, str) for b in bundles):
            raise UiPathError(400, "'userBundleCodes' must be a list of codes")
        for code in bundles:
            if org["products"].get(code, 0) == 0:
                raise UiPathError(404, f"The organization has no license for {code}")
        for code, more in extra.items():
            if more > 0 and self._user_total(org, code) + more > org["products"].get(code, 0):
                raise UiPathError(409, f"{code}: {self._user_total(org, code) + more} user "
                                       f"licenses would exceed the organization's "
                                       f"{org['products'].get(code, 0)}")
        return list(bundles)

    async def group(self, request: Request) -> Response:
        org = self._org(request.path_params["accountId"])
        group_id = request.path_params["groupId"]
        group = org["groups"].get(group_id)
        if group is None:
            raise UiPathError(404, f"Group {group_id} not found")
        if request.method == "PUT":
            body = await self._json(request)
            new = body.get("userBundleCodes")
            extra = {code: 1 for code in (new or []) if code not in
                     group["bundles"]} if isinstance(new, list) else {}
            group["bundles"] = self._check_bundles(org, new, extra)
        return JSONResponse({"groupId": group_id, "userBundleCodes": group["bundles"],
                             "useExternalLicense": False})

    async def users(self, request: Request) -> Response:
        org = self._org(request.path_params["accountId"])
        if request.method == "GET":
            return JSONResponse({"users": [{"userId": uid, "userBundleCodes": bundles}
                                           for uid, bundles in sorted(org["users"].items())]})
        body = await self._json(request)
        user_ids = body.get("userIds")
        if not isinstance(user_ids, list) or not user_ids:
            raise UiPathError(400, "'userIds' must be a non-empty list")
        for user_id in user_ids:
            if user_id not in org["users"]:
                raise UiPathError(404, f"User {user_id} not found")
        new = body.get("userBundleCodes")
        extra: dict[str, int] = {}
        if isinstance(new, list):
            for code in new:
                extra[code] = sum(1 for u in user_ids if code not in org["users"][u])
        bundles = self._check_bundles(org, new, extra)
        for user_id in user_ids:
            org["users"][user_id] = list(bundles)
        return JSONResponse({"userIds": user_ids, "userBundleCodes": bundles,
                             "useExternalLicense": False})
