"""Simulator of LicenseSpring: the License API v4 (device side) and the Management API.

Written from LicenseSpring's documentation and what its official Python SDK sends,
never from reconciler's provider. The official SDK (`licensespring.api.APIClient`)
can be pointed at it unmodified (`api_protocol="http"`, `api_domain="127.0.0.1:<port>"`,
`verify_license_signature=False`: the simulator cannot sign with the vendor's key).

License API (`/api/v4`): every call carries `Date` (RFC 7231) and
`Authorization: algorithm="hmac-sha256",headers="date",signature="<b64 HMAC-SHA256(
shared_key, 'licenseSpring\\ndate: ' + Date)>",apiKey="<key>"`. Missing headers →
400 `missing_headers`; unknown key, bad signature or a Date further than
`max_clock_skew_s` from the server clock → 401. Errors are `{status, code, message}`.

Management API (`/api/v1`): `Authorization: Api-Key <key>`; `GET /licenses/` and
`GET /devices/`, Django-style pages (`limit` at most 100, larger values capped).
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import hmac
import re
from typing import Any, ClassVar
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import Simulator

MAX_PAGE = 100
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
        licenses = []
        next_device = 1
        for entry in seed.get("licenses", []):
            devices = [dict(d) for d in entry.get("devices", [])]
            next_device = max([next_device, *(d["id"] + 1 for d in devices)])
            licenses.append({**entry, "devices": devices})
        return {"licenses": licenses, "next_device_id": next_device}

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
        ]

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
        date = request.headers.get("Date")
        authorization = request.headers.get("Authorization")
        if not date or not authorization:
            raise LicenseSpringError(400, "missing_headers", "some headers are missing")
        fields = dict(_AUTH_FIELD.findall(authorization))
        shared = self.seed.get("api_keys", {}).get(fields.get("apiKey", ""))
        if fields.get("algorithm") != "hmac-sha256" or fields.get("headers") != "date" \
                or shared is None:
            raise LicenseSpringError(401, "unauthorized", "invalid authorization header")
        message = f"licenseSpring\ndate: {date}".encode()
        expected = base64.b64encode(hmac.new(shared.encode(), message, hashlib.sha256)
                                    .digest()).decode()
        if not hmac.compare_digest(expected, fields.get("signature", "")):
            raise LicenseSpringError(401, "unauthorized", "invalid signature")
        try:
            sent = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            raise LicenseSpringError(400, "invalid_date", "Date is not in RFC 7231 format") \
                from None
        skew = abs((dt.datetime.now(dt.UTC) - sent).total_seconds())
        if skew > float(self.seed.get("max_clock_skew_s", 300)):
            raise LicenseSpringError(401, "date_out_of_range",
                                     f"Date is {skew:.0f} s away from the server's clock")

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
    def _license(self, data: dict[str, Any]) -> dict[str, Any]:
        product = data.get("product")
        if not product or not data.get("hardware_id"):
            raise LicenseSpringError(400, "missing_parameters", "hardware_id and product are "
                                                                "required")
        if product not in self.seed.get("products", {}):
            raise LicenseSpringError(400, "unknown_product", "provided product was not found")
        for entry in self.state["licenses"]:
            if entry["product"] != product:
                continue
            if data.get("license_id") not in (None, "") and str(entry["id"]) != str(
                    data["license_id"]):
                continue
            if "license_key" in data and entry.get("license_key") == data["license_key"]:
                return entry  # type: ignore[no-any-return]
            user = entry.get("user") or {}
            if "username" in data and user.get("username") == data["username"]:
                if "password" in data and data["password"] != user.get("password"):
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
                                    "product_name": self.seed["products"][entry["product"]],
                                    "authorization_method": "user" if entry.get("user")
                                    else "license-key"}}
        if entry.get("license_key"):
            body["license_key"] = entry["license_key"]
        if entry.get("user"):
            body["user"] = {"email": entry["user"]["username"]}
        return body

    # ---- License API -------------------------------------------------------------------------
    async def activate(self, data: dict[str, Any]) -> Response:
        entry = self._license(data)
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
        found = [self._body(e) for e in self.state["licenses"]
                 if (e.get("user") or {}).get("username") == data.get("username")
                 and e["user"].get("password") == data.get("password")
                 and e["product"] == data.get("product")]
        if not found:
            raise LicenseSpringError(400, "license_not_found",
                                     "license with the provided license user not found")
        return JSONResponse([{"license": body, "user": body.get("user")} for body in found])

    async def customer_license_users(self, data: dict[str, Any]) -> Response:
        users = [{"email": e["user"]["username"], "license_id": e["id"]}
                 for e in self.state["licenses"]
                 if e.get("user") and e["product"] == data.get("product")]
        return JSONResponse({"customer": data.get("customer"), "users": users})

    # ---- Management API ----------------------------------------------------------------------
    async def list_licenses(self, request: Request) -> Response:
        params = request.query_params
        rows = [
            {"id": e["id"], "license_key": e.get("license_key"),
             "product": {"short_code": e["product"]},
             "max_activations": e.get("max_activations"),
             "allow_unlimited_activations": bool(e.get("allow_unlimited_activations")),
             "times_activated": sum(1 for d in e["devices"] if d["device_active"]),
             "enabled": e.get("enabled", True), "validity_period": e.get("validity_period"),
             "license_user": {"email": e["user"]["username"]} if e.get("user") else None}
            for e in self.state["licenses"]
            if params.get("product__short_code") in (None, e["product"])
            and params.get("license_key") in (None, e.get("license_key"))
        ]
        return self._page(request, rows)

    async def list_devices(self, request: Request) -> Response:
        params = request.query_params
        rows = [
            {"id": d["id"], "license": e["id"], "hardware_id": d["hardware_id"],
             "device_active": d["device_active"], "time_activated": d.get("time_activated"),
             "time_deactivated": d.get("time_deactivated"), "blacklisted": False}
            for e in self.state["licenses"] for d in e["devices"]
            if params.get("license") in (None, str(e["id"]))
            and params.get("hardware_id") in (None, d["hardware_id"])
            and params.get("device_active") in (None, str(d["device_active"]).lower())
        ]
        return self._page(request, rows)

    @staticmethod
    def _page(request: Request, rows: list[dict[str, Any]]) -> Response:
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
            "count": len(rows),
            "next": link(offset + limit) if offset + limit < len(rows) else None,
            "previous": link(max(offset - limit, 0)) if offset > 0 else None,
            "results": rows[offset:offset + limit],
        })
