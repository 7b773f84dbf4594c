"""Simulator of LicenseSpring: the License API v4 (device side) and the Management API.

Written from LicenseSpring's documentation and what its official Python SDK sends,
never from reconciler's provider. The official SDK (`licensespring.api.APIClient`)
can be pointed at it unmodified (`api_protocol="http"`, `api_domain="127.0.0.1:<port>"`,
`verify_license_signature=False`: the simulator cannot sign with the vendor's key).

License API (`/api/v4`): every call carries `Date` (RFC 7231) and
`Authorization: algorithm="hmac-sha256",headers="date",signature="<b64 HMAC-SHA256(
shared_key, 'licenseSpring\\ndate: ' + Date)>",apiKey="<key>"`. Every rejection is a 400
with `{status, code, message}` and the documented code: `missing_headers` (no Date or
no Authorization), `authorization_missing_params`, `hmac_required`,
`authorization_invalid_headers`, `invalid_api_key`, `date_header_diff` (a Date further
than `max_clock_skew_s` from the server clock; the vendor allows 15 minutes) and
`signature_mismatch`. Unknown `/api/v4` paths and wrong methods answer in the same JSON
shape (404 `not_found`, 405 `method_not_allowed`), never plain text: the official SDK
reads `code` from every 4xx body. Deactivation takes `username` alone (the SDK sends
no password) and checks the `password` when one is given (the vendor's schema lists it).

Management API (`/api/v1`): `Authorization: Api-Key <key>`; `GET /licenses/` and
`GET /devices/`, Django-style pages (`limit` at most 100, larger values capped). A
user-based license lists its `license_users`, each with the vendor's tagged `email`
(`<address>|<tag>`) and the plain `true_email`. It is Django REST framework: a missing
or unknown key is 401, unknown paths 404 and wrong methods 405, each `{"detail": ...}`.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import re
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

MAX_PAGE = 100

Row = TypeVar("Row")
"""What a Management API list pages over: a license, or a (license, device) pair."""

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
LICENSE_API_ENDPOINTS = ("activate_license", "deactivate_license", "check_license",
                         "user_licenses", "customer_license_users")
_AUTH_FIELD = re.compile(r'(\w+)="([^"]*)"')


class LicenseSpringError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(message)

    def response(self) -> Response:
        return JSONResponse({"status": self.status, "code": self.code, "message": self.message},
                            status_code=self.status)


class LicenseSpringSimulator(Simulator):
    name = "licensespring"
    seed_resource = "licensespring.yaml"
    environment: ClassVar[dict[str, str]] = {
        "api_key_env": "sandbox-licensespring-api-key",
        "shared_key_env": "sandbox-licensespring-shared-key",
        "management_key_env": "sandbox-licensespring-management-key",
    }
    secondary_urls: ClassVar[tuple[str, ...]] = ("management_url_env",)

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        """Licenses with their `users` (the seed's `user:` is shorthand for one) and devices;
        license users get ids the way the vendor gives them: unique across the account."""
        licenses = []
        next_device = 1
        user_ids = iter(range(2001, 1_000_000))
        for entry in seed.get("licenses", []):
            devices = [dict(d) for d in entry.get("devices", [])]
            next_device = max([next_device, *(d["id"] + 1 for d in devices)])
            users = [dict(u) for u in ([entry["user"]] if entry.get("user") else [])
                     + list(entry.get("users", []))]
            for user in users:
                user.setdefault("id", next(user_ids))
            plain = {k: v for k, v in entry.items() if k != "user"}
            licenses.append({**plain, "users": users, "devices": devices})
        return {"licenses": licenses, "next_device_id": next_device}

    _license_paths = frozenset(f"/api/v4/{name}" for name in LICENSE_API_ENDPOINTS)
    _management_paths = frozenset({"/api/v1/licenses/", "/api/v1/devices/"})

    def routes(self) -> list[BaseRoute]:
        api = "/api/v4"
        return [
            Route(f"{api}/activate_license", self._signed(self.activate), methods=["POST"]),
            Route(f"{api}/deactivate_license", self._signed(self.deactivate), methods=["POST"]),
            Route(f"{api}/check_license", self._signed(self.check), methods=["GET"]),
            Route(f"{api}/user_licenses", self._signed(self.user_licenses), methods=["GET"]),
            Route(f"{api}/customer_license_users", self._signed(self.customer_license_users),
                  methods=["GET"]),
            Route("/api/v1/licenses/", self._managed(self.list_licenses), methods=["GET"]),
            Route("/api/v1/devices/", self._managed(self.list_devices), methods=["GET"]),
            # Last: whatever no route above answered, in the vendor's error shapes.
            Route(f"{api}/{{rest:path}}", self.license_api_unrouted, methods=ALL_METHODS),
            Route("/api/v1/{rest:path}", self.management_unrouted, methods=ALL_METHODS),
        ]

    async def license_api_unrouted(self, request: Request) -> Response:
        """The License API answers every error as JSON `{status, code, message}`, so the
        official SDK raises `ClientError` (a plain-text body would make it raise
        `JSONDecodeError`). Codes `not_found` / `method_not_allowed` (inferred)."""
        if request.url.path in self._license_paths:
            return LicenseSpringError(405, "method_not_allowed",
                                      f'Method "{request.method}" not allowed.').response()
        return LicenseSpringError(404, "not_found", "Not found.").response()

    async def management_unrouted(self, request: Request) -> Response:
        """The Management API is Django REST framework: errors are `{"detail": ...}`."""
        if request.url.path in self._management_paths:
            return JSONResponse({"detail": f'Method "{request.method}" not allowed.'},
                                status_code=405)
        return JSONResponse({"detail": "Not found."}, status_code=404)

    # ---- auth ---------------------------------------------------------------------------
    def _signed(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                self._verify(request)
                if request.method == "GET":
                    data: dict[str, Any] = dict(request.query_params)
                else:
                    data = await request.json()
                    if not isinstance(data, dict):
                        raise LicenseSpringError(400, "bad_request", "body must be an object")
                return await handler(data)  # type: ignore[no-any-return]
            except LicenseSpringError as error:
                return error.response()
            except ValueError:
                return LicenseSpringError(400, "bad_request", "body is not valid JSON").response()

        return endpoint

    def _verify(self, request: Request) -> None:
        """The documented checks, each with its documented code (all 400)."""
        date = request.headers.get("Date")
        authorization = request.headers.get("Authorization")
        if not date or not authorization:
            raise LicenseSpringError(400, "missing_headers", "some headers are missing")
        fields = {name.lower(): value for name, value in _AUTH_FIELD.findall(authorization)}
        if not {"algorithm", "headers", "signature", "apikey"} <= set(fields):
            raise LicenseSpringError(400, "authorization_missing_params",
                                     "authorization header needs algorithm, headers, "
                                     "signature and apikey")
        if fields["algorithm"].lower() != "hmac-sha256":
            raise LicenseSpringError(400, "hmac_required", "algorithm must be hmac-sha256")
        if fields["headers"].lower() != "date":
            raise LicenseSpringError(400, "authorization_invalid_headers",
                                     'headers must be "date"')
        shared = self.seed.get("api_keys", {}).get(fields["apikey"])
        if shared is None:
            raise LicenseSpringError(400, "invalid_api_key", "invalid api key")
        try:
            sent = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            sent = None
        if sent is None or sent.tzinfo is None:
            raise LicenseSpringError(400, "date_header_diff",
                                     "Date header is not an RFC 7231 date in GMT")
        skew = abs((dt.datetime.now(dt.UTC) - sent).total_seconds())
        if skew > float(self.seed.get("max_clock_skew_s", 900)):
            raise LicenseSpringError(400, "date_header_diff",
                                     f"Date header is {skew:.0f} s away from the server time")
        message = f"licenseSpring\ndate: {date}".encode()
        expected = base64.b64encode(hmac.new(shared.encode(), message, hashlib.sha256)
                                    .digest()).decode()
        if not hmac.compare_digest(expected, fields["signature"]):
            raise LicenseSpringError(400, "signature_mismatch", "signature mismatch")

    def _managed(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            header = request.headers.get("Authorization", "")
            if not header.startswith("Api-Key ") or header.removeprefix("Api-Key ") not in \
                    self.seed.get("management_keys", []):
                return JSONResponse({"detail": "Authentication credentials were not provided."},
                                    status_code=401)
            return await handler(request)  # type: ignore[no-any-return]

        return endpoint

    # ---- license lookup ---------------------------------------------------------------------
    def _product(self, code: Any) -> dict[str, str]:
        """A product's name and authorization method (`license-key` or `user`): a product
        is one or the other, so all its licenses are key-based or all user-based."""
        entry = self.seed.get("products", {}).get(code) if isinstance(code, str) else None
        if entry is None:
            raise LicenseSpringError(400, "unknown_product", "provided product was not found")
        if isinstance(entry, str):
            return {"product_name": entry, "authorization_method": "license-key"}
        return {"product_name": str(entry.get("name", code)),
                "authorization_method": str(entry.get("authorization_method", "license-key"))}

    def _user_product(self, code: Any) -> None:
        if self._product(code)["authorization_method"] != "user":
            raise LicenseSpringError(400, "invalid_product_auth_method",
                                     "product authorization method is invalid")

    def _license(self, data: dict[str, Any], *, password: bool = False) -> dict[str, Any]:
        """The license a License API call names: by key, or by one of its users (with the
        user's password when `password`, as activation asks), optionally pinned by id."""
        product = data.get("product")
        if not product or not data.get("hardware_id"):
            raise LicenseSpringError(400, "missing_parameters", "hardware_id and product are "
                                                                "required")
        by_user = self._product(product)["authorization_method"] == "user"
        for entry in self.state["licenses"]:
            if entry["product"] != product:
                continue
            if data.get("license_id") not in (None, "") and str(entry["id"]) != str(
                    data["license_id"]):
                continue
            if not by_user and "license_key" in data and \
                    entry.get("license_key") == data["license_key"]:
                return entry  # type: ignore[no-any-return]
            user = next((u for u in _users(entry) if by_user
                         and u["username"] == data.get("username")), None)
            if user is not None:
                if (password or "password" in data) and data.get("password") != user["password"]:
                    raise LicenseSpringError(400, "license_not_found",
                                             "license with the provided license user not found")
                return entry  # type: ignore[no-any-return]
        raise LicenseSpringError(400, "license_not_found",
                                 "license with the provided license key or user not found")

    @staticmethod
    def _usable(entry: dict[str, Any]) -> None:
        today = dt.date.today().isoformat()
        if not entry.get("enabled", True):
            raise LicenseSpringError(400, "license_not_enabled", "the license is not enabled")
        if entry.get("start_date") and str(entry["start_date"]) > today:
            raise LicenseSpringError(400, "license_start_date_error",
                                     f"this license cannot be activated before start date "
                                     f"{entry['start_date']}")
        if entry.get("validity_period") and str(entry["validity_period"]) < today:
            raise LicenseSpringError(400, "license_expired", "license validity period has "
                                                             "expired")

    def _body(self, entry: dict[str, Any]) -> dict[str, Any]:
        active = [d for d in entry["devices"] if d["device_active"]]
        body = {"id": entry["id"], "license_type": "perpetual",
                "max_activations": entry.get("max_activations"),
                "allow_unlimited_activations": bool(entry.get("allow_unlimited_activations")),
                "times_activated": len(active), "license_enabled": entry.get("enabled", True),
                "license_active": True, "is_expired": False,
                "validity_period": entry.get("validity_period"),
                "product_details": {"short_code": entry["product"],
                                    **self._product(entry["product"])}}
        if entry.get("license_key"):
            body["license_key"] = entry["license_key"]
        if _users(entry):
            body["user"] = {"email": _users(entry)[0]["username"]}
        return body

    # ---- License API -------------------------------------------------------------------------
    async def activate(self, data: dict[str, Any]) -> Response:
        entry = self._license(data, password=True)
        self._usable(entry)
        device = next((d for d in entry["devices"] if d["hardware_id"] == data["hardware_id"]),
                      None)
        if device is not None and device["device_active"]:
            return JSONResponse(self._body(entry))  # activating again on the same device
        active = sum(1 for d in entry["devices"] if d["device_active"])
        if not entry.get("allow_unlimited_activations") and active >= int(
                entry.get("max_activations", 1)):
            raise LicenseSpringError(400, "license_activated_max_times",
                                     "this license has already been activated the maximum "
                                     "number of times")
        now = dt.datetime.now(dt.UTC).isoformat()
        if device is None:
            device = {"id": self.state["next_device_id"], "hardware_id": data["hardware_id"]}
            self.state["next_device_id"] += 1
            entry["devices"].append(device)
        device.update({"device_active": True, "time_activated": now, "time_deactivated": None,
                       "hostname": data.get("hostname"), "os_ver": data.get("os_ver")})
        return JSONResponse(self._body(entry))

    async def deactivate(self, data: dict[str, Any]) -> Response:
        entry = self._license(data)
        device = next((d for d in entry["devices"] if d["hardware_id"] == data["hardware_id"]
                       and d["device_active"]), None)
        if device is None:
            raise LicenseSpringError(400, "device_not_found",
                                     "an active device matching the hardware_id not found")
        device["device_active"] = False
        device["time_deactivated"] = dt.datetime.now(dt.UTC).isoformat()
        return PlainTextResponse("license_deactivated")

    async def check(self, data: dict[str, Any]) -> Response:
        entry = self._license(data)
        self._usable(entry)
        if not any(d["hardware_id"] == data["hardware_id"] and d["device_active"]
                   for d in entry["devices"]):
            raise LicenseSpringError(400, "device_not_found",
                                     "an active device matching the hardware_id not found")
        return JSONResponse(self._body(entry))

    async def user_licenses(self, data: dict[str, Any]) -> Response:
        self._user_product(data.get("product"))
        found = [(self._body(e), u) for e in self.state["licenses"] for u in _users(e)
                 if u["username"] == data.get("username")
                 and u["password"] == data.get("password")
                 and e["product"] == data.get("product")]
        if not found:
            raise LicenseSpringError(400, "license_not_found",
                                     "license with the provided license user not found")
        return JSONResponse([{"license": body, "user": {"email": user["username"]}}
                             for body, user in found])

    async def customer_license_users(self, data: dict[str, Any]) -> Response:
        self._user_product(data.get("product"))
        users = [{"email": u["username"], "license_id": e["id"],
                  "max_activations": e.get("max_activations"),
                  "total_activations": sum(1 for d in e["devices"] if d["device_active"])}
                 for e in self.state["licenses"] for u in _users(e)
                 if e["product"] == data.get("product")]
        return JSONResponse({"customer": data.get("customer"), "users": users})

    # ---- Management API ----------------------------------------------------------------------
    async def list_licenses(self, request: Request) -> Response:
        params = request.query_params
        product, key = params.get("product_short_code"), params.get("license_key")
        email, hardware_id = params.get("license_users__true_email"), params.get(
            "devices__hardware_id")
        found = [
            e for e in self.state["licenses"]
            if product in (None, e["product"]) and key in (None, e.get("license_key"))
            and email in (None, *(u["username"] for u in _users(e)))
            and hardware_id in (None, *(d["hardware_id"] for d in e["devices"]))
        ]
        return self._page(request, found, self._license_row)

    def _license_row(self, e: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": e["id"], "license_key": e.get("license_key"),
            "product": {"short_code": e["product"], **self._product(e["product"])},
            "max_activations": e.get("max_activations"),
            "allow_unlimited_activations": bool(e.get("allow_unlimited_activations")),
            "times_activated": sum(1 for d in e["devices"] if d["device_active"]),
            "enabled": e.get("enabled", True), "validity_period": e.get("validity_period"),
            "start_date": e.get("start_date"),
            "license_users": [{"id": u["id"], "email": f"{u['username']}|sandbox",
                               "true_email": u["username"], "is_active": True}
                              for u in _users(e)]}

    async def list_devices(self, request: Request) -> Response:
        # Each filter is read once and tested only when given: 20k devices a page made
        # these tests the simulator's whole CPU (200 pages: 8 s of a 10 s read).
        params = request.query_params
        license_id, hardware_id = params.get("license"), params.get("hardware_id")
        hostname, blacklisted = params.get("hostname"), params.get("blacklisted")
        found = [
            (e, d) for e in self.state["licenses"]
            if license_id is None or license_id == str(e["id"])
            for d in e["devices"]
            if (hardware_id is None or hardware_id == d["hardware_id"])
            and (hostname is None or hostname == d.get("hostname"))
            and (blacklisted is None or blacklisted == str(bool(d.get("blacklisted"))).lower())
        ]
        return self._page(request, found, _device_row)

    @staticmethod
    def _page(request: Request, found: list[Row],
              row: Callable[[Row], dict[str, Any]]) -> Response:
        """One page of `found`: only that page's rows are built."""
        try:
            limit = min(int(request.query_params.get("limit", "20")), MAX_PAGE)
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            return JSONResponse({"detail": "limit and offset must be integers"}, status_code=400)
        base = str(request.url.remove_query_params(["limit", "offset"]))
        joiner = "&" if "?" in base else "?"

        def link(start: int) -> str:
            return f"{base}{joiner}{urlencode({'limit': limit, 'offset': start})}"

        return JSONResponse({
            "count": len(found),
            "next": link(offset + limit) if offset + limit < len(found) else None,
            "previous": link(max(offset - limit, 0)) if offset > 0 else None,
            "results": [row(item) for item in found[offset:offset + limit]],
        })


def _device_row(found: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
    e, d = found
    return {"id": d["id"], "license": e["id"], "hardware_id": d["hardware_id"],
            "device_active": d["device_active"], "time_activated": d.get("time_activated"),
            "time_deactivated": d.get("time_deactivated"), "hostname": d.get("hostname"),
            "blacklisted": bool(d.get("blacklisted", False))}


def _users(entry: dict[str, Any]) -> list[dict[str, Any]]:
    """A license's users; state saved by an earlier version has a single `user`."""
    if "users" in entry:
        return list(entry["users"])
    return [{"id": 0, **entry["user"]}] if entry.get("user") else []
