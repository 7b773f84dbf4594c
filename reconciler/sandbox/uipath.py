"""Simulator of UiPath Automation Suite licensing (LRM and user licensing APIs).

Written from UiPath's Automation Suite API guide (2023.10), never from reconciler's
provider:
- host admins get a token by ROPC (`POST /api/account/authenticate`, `TenancyName`
  "Host"); organization admins by an external app (`POST /identity_/connect/token`,
  client credentials, scope `PM.License` or its `.Read` / `.Write` permissions);
- organization and tenant allocations are host-level calls (host token); group and
  user allocations are organization-level calls (external-app token) at
  `/lease_/api/account/{accountId}/user-license[/group/{groupId}]`, the references'
  form ("Allocate Licenses to a User", every version; "to a Group" 2022.10 and
  2023.4), or under `/{organizationName}/lease_/...`, the form of later group
  references and of every example's base URL. A missing, unknown or expired token
  gets 401; the other kind of token, or an app token without the permission a
  method needs (`PM.License.Read` for GET, `PM.License.Write` for PUT), gets 403;
- a PUT *sets* an allocation: the body states the new totals. Codes a PUT does not
  list drop to 0 (the stricter reading of a PUT: a client that sends only the codes
  it changes loses the others here, not in production);
- 404 when the level above holds no license at all (the host license, the
  organization's license); 409 when a change exceeds what the level above holds,
  lowers a level below what the levels under it hold, or lowers a tenant below the
  robots it has in use;
- usage of a user license code is counted per user: a user with a direct allocation
  holds one unit of each of its codes; a group's allocation rule holds nothing by
  itself, each member who signs in takes one unit of each of the group's codes,
  first come first served, while the organization has one left (Automation Cloud,
  "Assigning licenses to users by group membership"; "direct license allocation
  overwrites any licenses the user inherited from groups"). A group PUT that exceeds
  the account's quantities is 409, as "Allocate Licenses to a Group" (2022.10, 2023.4)
  documents: read here as a rule that adds a code of which the organization holds
  none, or none is left (every unit taken by users and group members). Codes already in
  the rule are never refused; dropping a code releases what its members took;
- the reference's forms only: `PUT` with `productQuantities` for an organization,
  `PUT .../service-license/{serviceScopeId}/{serviceType}` with `products` for a
  tenant. The guide's examples send `POST` (and, for the tenant, `productQuantities`
  to a URL ending `?????`); those are refused with a message naming the accepted form.
  Any other method is 405 and any other path 404, in the same JSON error shape;
- `GET` on the same paths reads the current allocation, and `GET .../user-license`
  lists the organization's directly licensed users (inferred: no public page).

Sandbox-only: `POST /_sandbox/expire-tokens` ends every token issued so far, so a
test can expire one without sleeping (`token_ttl_s` in the seed sets the lifetime);
`POST /_sandbox/sign-in` `{"organizationId", "userId"}` signs a group member in, who
then takes the group's licenses that are still available.
"""

from __future__ import annotations

from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator
from reconciler.sandbox.uipath_identity import Handler, UiPathError, UiPathIdentity


class UiPathSimulator(UiPathIdentity, Simulator):
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
                "tenants": {t["id"]: {
                    "name": t["name"],
                    "services": {service: dict(products)
                                 for service, products in t.get("services", {}).items()},
                    "in_use": {service: dict(products)
                               for service, products in t.get("in_use", {}).items()},
                } for t in org.get("tenants", [])},
                "groups": {g["id"]: {
                    "bundles": list(g.get("bundles", [])),
                    "members": list(g.get("members", [])),
                    "acquired": {user: list(codes)
                                 for user, codes in (g.get("acquired") or {}).items()},
                } for g in org.get("groups", [])},
                "users": {u["id"]: list(u.get("bundles", [])) for u in org.get("users", [])},
            }
        return {"host": dict(seed.get("host_license", {})), "organizations": organizations,
                "tokens": {}}

    def routes(self) -> list[BaseRoute]:
        host = "/lrm/api/host/{hostAccountId}/organization/{organizationId}/license"
        tenant = "/lrm/api/account/{accountId}/service-license/{serviceScopeId}/{serviceType}"
        lease = "/lease_/api/account/{accountId}/user-license"
        named = "/{organizationName}" + lease
        routes: list[tuple[str, Handler, frozenset[str]]] = [
            ("/api/account/authenticate", self.authenticate, frozenset({"POST"})),
            ("/identity_/connect/token", self.client_token, frozenset({"POST"})),
            (host, self._guard("host", self.organization), ALLOCATION_METHODS),
            (tenant, self._guard("host", self.tenant), ALLOCATION_METHODS),
            (lease + "/group/{groupId}", self._guard("app", self.group), ALLOCATION_METHODS),
            (lease, self._guard("app", self.users), ALLOCATION_METHODS),
            (named + "/group/{groupId}", self._guard("app", self.group), ALLOCATION_METHODS),
            (named, self._guard("app", self.users), ALLOCATION_METHODS),
        ]
        every = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return [*(Route(path, _only(methods, handler), methods=every)
                  for path, handler, methods in routes),
                Route("/{anything:path}", _not_found, methods=every)]

    def admin_routes(self) -> list[BaseRoute]:
        async def expire(_: Request) -> Response:
            """Sandbox-only: every token issued so far expires now."""
            for token in self.state["tokens"].values():
                token["expires"] = 0
            self.save()
            return JSONResponse({"expired": len(self.state["tokens"])})

        async def sign_in(request: Request) -> Response:
            """Sandbox-only: a group member signs in and takes the group's licenses
            that the organization still has (first come, first served)."""
            body = await request.json()
            org = self.state["organizations"].get(str(body.get("organizationId")))
            if org is None:
                return JSONResponse({"message": "Organization not found", "errorCode": 404},
                                    status_code=404)
            user = str(body.get("userId"))
            taken: list[str] = []
            if not org["users"].get(user):
                for group in org["groups"].values():
                    if user not in group["members"]:
                        continue
                    for code in group["bundles"]:
                        if code in self._consumed_by(org, user):
                            continue
                        if self._user_total(org, code) < org["products"].get(code, 0):
                            group["acquired"].setdefault(user, []).append(code)
                            taken.append(code)
            self.save()
            return JSONResponse({"userId": user, "acquired": sorted(taken)})

        return [Route("/_sandbox/expire-tokens", expire, methods=["POST"]),
                Route("/_sandbox/sign-in", sign_in, methods=["POST"])]

    # ---- helpers -------------------------------------------------------------------------
    def _org(self, org_id: str) -> dict[str, Any]:
        org = self.state["organizations"].get(org_id)
        if org is None:
            raise UiPathError(404, f"Organization {org_id} not found")
        assert isinstance(org, dict)
        return org

    @staticmethod
    def _licensed(org: dict[str, Any]) -> None:
        """404 as documented: "No account license is allocated for the organization"."""
        if not any(org["products"].values()):
            raise UiPathError(404, "No account license is allocated for the indicated "
                                   "organization")

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
                    or isinstance(item.get("quantity"), bool)
                    or not isinstance(item.get("quantity"), int) or item["quantity"] < 0):
                raise UiPathError(400, f"'{field}' items need a code and a quantity >= 0")
            found[item["code"]] = item["quantity"]
        return found

    @staticmethod
    def _refuse_post(request: Request, accepted: str) -> None:
        if request.method == "POST":
            raise UiPathError(405, f"Method POST is not allowed: use PUT with {accepted}")

    @staticmethod
    def _tenant_total(org: dict[str, Any], code: str, skip: tuple[str, str] | None = None) -> int:
        return sum(products.get(code, 0)
                   for tenant_id, tenant in org["tenants"].items()
                   for service, products in tenant["services"].items()
                   if (tenant_id, service) != skip)

    @staticmethod
    def _consumed_by(org: dict[str, Any], user: str) -> set[str]:
        """The codes one user holds a unit of: its direct allocation, which overrides
        what its groups gave it; without one, what it took from its groups."""
        direct = org["users"].get(user)
        if direct:
            return set(direct)
        return {code for group in org["groups"].values()
                for code in group["acquired"].get(user, [])}

    @classmethod
    def _user_total(cls, org: dict[str, Any], code: str) -> int:
        """Units of a user license code in use: one per user holding it, directly or
        taken from a group (a group's rule itself holds none)."""
        people = set(org["users"]) | {user for group in org["groups"].values()
                                      for user in group["acquired"]}
        return sum(1 for user in people if code in cls._consumed_by(org, user))

    # ---- organization (host level) -------------------------------------------------------------
    async def organization(self, request: Request) -> Response:
        self._refuse_post(request, "a body {productQuantities: [{code, quantity}]}")
        if request.path_params["hostAccountId"] != self.seed.get("host_account_id"):
            raise UiPathError(404, "The host license does not exist")
        org_id = request.path_params["organizationId"]
        org = self._org(org_id)
        if request.method == "PUT":
            body = await self._json(request)
            if "products" in body and "productQuantities" not in body:
                raise UiPathError(400, "Unknown field 'products': this endpoint takes "
                                       "'productQuantities'")
            listed = self._quantities(body.get("productQuantities"), "productQuantities")
            if not any(self.state["host"].values()):
                raise UiPathError(404, "The host license does not exist")
            wanted = {code: listed.get(code, 0) for code in set(org["products"]) | set(listed)}
            for code, quantity in sorted(wanted.items()):
                if quantity == org["products"].get(code, 0):
                    continue
                host = self.state["host"].get(code, 0)
                others = sum(o["products"].get(code, 0)
                             for oid, o in self.state["organizations"].items() if oid != org_id)
                if others + quantity > host:
                    raise UiPathError(409, f"The license allocation is not allowed: {code} "
                                           f"{others + quantity} exceeds the host license "
                                           f"quantity {host}")
                below = self._tenant_total(org, code) + self._user_total(org, code)
                if quantity < below:
                    raise UiPathError(409, f"The license allocation is not allowed: {code} "
                                           f"cannot be set to {quantity}, the organization's "
                                           f"tenants, groups and users hold {below}")
            org["products"] = {code: qty for code, qty in wanted.items() if qty}
        return JSONResponse({"productQuantities": [
            {"code": code, "quantity": qty} for code, qty in sorted(org["products"].items())]})

    # ---- tenant (host level) ---------------------------------------------------------------------
    async def tenant(self, request: Request) -> Response:
        self._refuse_post(request, "a body {tenantName, products: [{code, quantity}]} to "
                                   ".../service-license/{serviceScopeId}/{serviceType}")
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
            listed = self._quantities(body.get("products"), "products")
            self._licensed(org)
            held_now: dict[str, int] = tenant["services"].get(service, {})
            wanted = {code: listed.get(code, 0) for code in set(held_now) | set(listed)}
            in_use: dict[str, int] = tenant["in_use"].get(service, {})
            for code, quantity in sorted(wanted.items()):
                if quantity == held_now.get(code, 0):
                    continue
                if quantity < in_use.get(code, 0):
                    raise UiPathError(409, f"The license allocation is not allowed: {code} "
                                           f"cannot be set to {quantity}, the tenant has "
                                           f"{in_use[code]} in use")
                held = org["products"].get(code, 0)
                total = (self._tenant_total(org, code, skip=(tenant_id, service))
                         + self._user_total(org, code) + quantity)
                if total > held:
                    raise UiPathError(409, f"The license allocation is not allowed: {code} "
                                           f"{total} exceeds the organization's {held}")
            tenant["services"][service] = {code: qty for code, qty in wanted.items() if qty}
        products = tenant["services"].get(service, {})
        return JSONResponse({
            "accountId": request.path_params["accountId"], "serviceScopeId": tenant_id,
            "serviceType": service,
            "license": {"licenseCode": f"LIC-{tenant_id[:8]}", "bundleCode": "",
                        "subscriptionCode": "", "licenseStatus": "ACTIVE", "startDate": 0,
                        "endDate": 0, "gracePeriod": 0, "products": [
                            {"code": code, "quantity": qty, "type": "ROBOT", "features": []}
                            for code, qty in sorted(products.items())],
                        "templates": [], "payload": "", "boonLicenseCode": ""},
            "userLicensingEnabled": True, "accountLicenseCode": f"ACC-{tenant_id[:8]}"})

    # ---- groups and users (organization level) ---------------------------------------------------
    def _lease_org(self, request: Request) -> dict[str, Any]:
        org = self._org(request.path_params["accountId"])
        named = request.path_params.get("organizationName")
        if named is not None and named != org["name"]:
            raise UiPathError(404, f"Organization {request.path_params['organizationName']} "
                                   f"not found")
        return org

    def _check_bundles(self, org: dict[str, Any], bundles: Any, extra: dict[str, int]) -> list[str]:
        if not isinstance(bundles, list) or not all(isinstance(b, str) for b in bundles):
            raise UiPathError(400, "'userBundleCodes' must be a list of codes")
        self._licensed(org)
        for code, more in sorted(extra.items()):
            if more > 0 and self._user_total(org, code) + more > org["products"].get(code, 0):
                raise UiPathError(409, f"The license allocation is not allowed: {code} "
                                       f"{self._user_total(org, code) + more} exceeds the "
                                       f"account license quantity "
                                       f"{org['products'].get(code, 0)}")
        return sorted(set(bundles))

    async def group(self, request: Request) -> Response:
        self._refuse_post(request, "a body {userBundleCodes: [...]}")
        org = self._lease_org(request)
        group_id = request.path_params["groupId"]
        group = org["groups"].get(group_id)
        if group is None:
            raise UiPathError(404, f"Group {group_id} not found")
        if request.method == "PUT":
            new = (await self._json(request)).get("userBundleCodes")
            bundles = self._check_bundles(org, new, {})
            for code in sorted(set(bundles) - set(group["bundles"])):
                held = org["products"].get(code, 0)
                if self._user_total(org, code) >= held:
                    raise UiPathError(409, f"The license allocation is not allowed because it "
                                           f"exceeds the account license quantities: {code} "
                                           f"has {held}, all in use")
            group["bundles"] = bundles
            group["acquired"] = {user: kept for user, codes in group["acquired"].items()
                                 if (kept := [c for c in codes if c in group["bundles"]])}
        return JSONResponse({"groupId": group_id, "userBundleCodes": group["bundles"],
                             "useExternalLicense": False})

    async def users(self, request: Request) -> Response:
        self._refuse_post(request, "a body {userIds: [...], userBundleCodes: [...]}")
        org = self._lease_org(request)
        if request.method == "GET":
            return JSONResponse({"users": [{"userId": uid, "userBundleCodes": bundles}
                                           for uid, bundles in sorted(org["users"].items())]})
        body = await self._json(request)
        user_ids = body.get("userIds")
        if (not isinstance(user_ids, list) or not user_ids
                or not all(isinstance(u, str) for u in user_ids)):
            raise UiPathError(400, "'userIds' must be a non-empty list")
        for user_id in user_ids:
            if user_id not in org["users"]:
                raise UiPathError(404, f"User {user_id} not found")
        new = body.get("userBundleCodes")
        extra: dict[str, int] = {}
        if isinstance(new, list):
            for code in new:
                extra[code] = sum(1 for u in set(user_ids)
                                  if code not in self._consumed_by(org, u))
        bundles = self._check_bundles(org, new, extra)
        for user_id in user_ids:
            org["users"][user_id] = list(bundles)
            if bundles:  # a direct allocation overrides what the user took from groups
                for group in org["groups"].values():
                    group["acquired"].pop(user_id, None)
        return JSONResponse({"userIds": user_ids, "userBundleCodes": bundles,
                             "useExternalLicense": bool(body.get("useExternalLicense", False))})


ALLOCATION_METHODS = frozenset({"GET", "PUT", "POST"})
"""POST is routed to the allocation handlers so they can name the accepted form."""


def _only(methods: frozenset[str], handler: Handler) -> Handler:
    """Other methods get the vendor's JSON error shape (405), not Starlette's text."""
    async def endpoint(request: Request) -> Response:
        if request.method not in methods:
            allowed = ", ".join(sorted(methods))
            return JSONResponse({"message": f"Method {request.method} is not allowed "
                                            f"(allowed: {allowed})", "errorCode": 405},
                                status_code=405, headers={"Allow": allowed})
        return await handler(request)

    return endpoint


async def _not_found(request: Request) -> Response:
    return JSONResponse({"message": f"No resource at {request.url.path}", "errorCode": 404},
                        status_code=404)
