"""Simulator of ManageEngine ADManager Plus: O365 licences through workflow requests.

Written from ADManager's REST API pages, never from reconciler's provider:
- every call carries `AuthToken`, `domainName` and `PRODUCT_NAME` query parameters;
- `GET|POST /RestAPI/CreateWorkFlowRequest` takes `inputData`, a JSON array of
  requests, validated strictly (RequestAction, Subject, accounts, string booleans at
  the top level, real booleans in the SKU list); the answer is an array of
  `{Subject, requestId, statusMessage, status}` with status "1", or status "0" and a
  message and no requestId;
- a request changes nothing when created: it waits for approval (a sandbox-only
  endpoint, or `auto_approve_after_s` in the seed), then executes, capacity permitting;
- `GET|POST /RestAPI/SearchUser` pages users with `range`/`startIndex` (both
  mandatory), with the licence column the admin configured; like real servers it
  answers `{"UsersList": [...], "count": n}` with a lower-case `count` and no
  `status` (the page says `Count` and 'SUCCESS'; ManageEngine's Zendesk app reads
  `response.count`);
- `GET /RestAPI/WorkflowRequestStatus?requestId=` and
  `GET /RestAPI/WorkflowRequests?searchText=` (inferred: no public page shows them)
  tell pending / executed / rejected;
- unknown paths (404) and wrong methods (405) answer `{"status": "0", "statusMessage"}`.

Sandbox-only: the approver, `POST /_sandbox/approvals/{id}/approve` and `.../reject`
(`reconciler sandbox approve|reject admanager`; `/_sandbox/workflow/{id}/...` is
the same), and `GET /_sandbox/approvals` for the requests waiting.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from reconciler.sandbox.base import ApprovalRefused, Simulator

ACTIONS = frozenset({"REMOVE_O365_LICENSES", "ASSIGN_O365_LICENSES"})


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
API_PATHS = frozenset({"/RestAPI/CreateWorkFlowRequest", "/RestAPI/SearchUser",
                       "/RestAPI/WorkflowRequestStatus", "/RestAPI/WorkflowRequests"})


async def _unknown(request: Request) -> Response:
    """Unknown paths and wrong methods answer in the API's JSON shape, never plain text."""
    path = request.url.path
    if path in API_PATHS:
        return JSONResponse({"status": "0", "statusMessage": f"{request.method} is not "
                                                             f"supported by {path}."},
                            status_code=405)
    return JSONResponse({"status": "0", "statusMessage": f"The URL {path} is not a valid "
                                                         "ADManager Plus API."},
                        status_code=404)


class RequestRejected(Exception):
    """One workflow request of the batch is invalid: status "0" with this message."""


class ADManagerSimulator(Simulator):
    name = "admanager"
    seed_resource = "admanager.yaml"
    environment: ClassVar[dict[str, str]] = {"auth_token_env": "sandbox-admanager-authtoken"}

    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        domains: dict[str, Any] = {}
        for domain, content in (seed.get("domains") or {}).items():
            domains[domain] = {
                "skus": content.get("skus", {}),
                "users": [
                    {**user, "licences": {sku: {"disabled": sorted(v.get("disabled", []))}
                                          for sku, v in (user.get("licences") or {}).items()}}
                    for user in content.get("users", [])
                ],
            }
        return {"domains": domains, "requests": {}, "next_id": 7501}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/RestAPI/CreateWorkFlowRequest", self._guarded(self.create_request),
                  methods=["GET", "POST"]),
            Route("/RestAPI/SearchUser", self._guarded(self.search_user),
                  methods=["GET", "POST"]),
            Route("/RestAPI/WorkflowRequestStatus", self._guarded(self.request_status),
                  methods=["GET"]),
            Route("/RestAPI/WorkflowRequests", self._guarded(self.search_requests),
                  methods=["GET"]),
            Route("/{path:path}", _unknown, methods=ALL_METHODS),
        ]

    def admin_routes(self) -> list[BaseRoute]:
        async def decide(request: Request) -> Response:
            request_id = str(request.path_params["request_id"])
            verdict = request.path_params["decision"]
            if verdict not in ("approve", "reject"):
                return JSONResponse({"error": f"no request {request_id} to {verdict}"},
                                    status_code=404)
            try:
                self.decide(request_id, verdict == "approve")
            except ApprovalRefused as refused:
                return JSONResponse({"error": str(refused)}, status_code=refused.status)
            self.save()
            return JSONResponse(self.state["requests"][request_id])

        return [Route("/_sandbox/workflow/{request_id:int}/{decision:str}", decide,
                      methods=["POST"])]

    # ---- the approver (sandbox only) -------------------------------------------------
    def waiting_approval(self) -> list[dict[str, Any]]:
        """Every request still pending, oldest first."""
        waiting = sorted((e for e in self.state["requests"].values()
                          if e["status"] == "pending"), key=lambda e: int(e["requestId"]))
        return [{"requestId": str(e["requestId"]),
                 "summary": f"{e['action']} {', '.join(s['sku'] for s in e['skus']) or 'all'} "
                            f"for {', '.join(e['users'])} in {e['domain']}"}
                for e in waiting]

    def decide(self, request_id: str, approve: bool) -> dict[str, Any]:
        """Approving executes the request now (capacity checked at execution, as
        ADManager does); rejecting closes it. A request is decided once."""
        entry = self.state["requests"].get(request_id)
        verb = "approve" if approve else "reject"
        if entry is None:
            raise ApprovalRefused(f"no request {request_id} to {verb}", 404)
        if entry["status"] != "pending":
            raise ApprovalRefused(f"request {request_id} is already {entry['status']}", 409)
        if approve:
            self._execute(entry)
        else:
            entry["status"] = "rejected"
            entry["message"] = "Rejected by the approver"
        return {"requestId": str(request_id), "status": entry["status"],
                "message": entry["message"]}

    # ---- guards ---------------------------------------------------------------------
    def _guarded(self, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            params = dict(request.query_params)
            if request.method == "POST":
                form = parse_qs((await request.body()).decode("utf-8", "replace"))
                params.update({k: v[-1] for k, v in form.items()})
            if params.get("AuthToken") not in self.seed.get("auth_tokens", []):
                return JSONResponse({"status": "0", "statusMessage": "Invalid AuthToken."})
            if not params.get("PRODUCT_NAME"):
                return JSONResponse({"status": "0", "statusMessage": "PRODUCT_NAME is mandatory."})
            domain = params.get("domainName", "")
            if domain not in self.state["domains"]:
                return JSONResponse({"status": "0",
                                     "statusMessage": f"Domain {domain!r} is not configured."})
            self._auto_approve()
            return await handler(params, self.state["domains"][domain])  # type: ignore[no-any-return]

        return endpoint

    def _auto_approve(self) -> None:
        delay = self.seed.get("auto_approve_after_s")
        if delay is None:
            return
        now = time.time()
        due = [e for e in self.state["requests"].values()
               if e["status"] == "pending" and now - e["created"] >= float(delay)]
        for entry in due:
            self._execute(entry)
        if due:
            self.save()

    # ---- workflow requests ---------------------------------------------------------------
    async def create_request(self, params: dict[str, str], domain: dict[str, Any]) -> Response:
        try:
            batch = json.loads(params.get("inputData", ""))
        except ValueError:
            return JSONResponse([{"status": "0", "statusMessage": "inputData is not valid JSON."}])
        if not isinstance(batch, list) or not batch:
            return JSONResponse([{"status": "0",
                                  "statusMessage": "inputData must be a JSON array of requests."}])
        answers = []
        for item in batch:
            subject = item.get("Subject") if isinstance(item, dict) else None
            try:
                parsed = self._validate(item, domain)
            except RequestRejected as error:
                answers.append({"Subject": subject or "", "statusMessage": str(error),
                                "status": "0"})
                continue
            request_id = self.state["next_id"]
            self.state["next_id"] += 1
            self.state["requests"][str(request_id)] = {
                "requestId": request_id, "status": "pending", "message": "",
                "created": time.time(), "domain": params["domainName"],
                "subject": subject, "description": str(item.get("Description") or ""),
                **parsed}
            answers.append({"Subject": subject, "requestId": request_id,
                            "statusMessage": "Successfully created the request.", "status": "1"})
        return JSONResponse(answers)

    def _validate(self, item: Any, domain: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise RequestRejected("Each request must be a JSON object.")
        action = item.get("RequestAction")
        if action not in ACTIONS:
            raise RequestRejected(f"Invalid RequestAction: {action!r}.")
        if not isinstance(item.get("Subject"), str) or not item["Subject"].strip():
            raise RequestRejected("Subject is mandatory.")
        accounts = item.get("accounts")
        if not isinstance(accounts, list) or not accounts:
            raise RequestRejected("accounts is mandatory.")
        users = []
        for account in accounts:
            user = self._user(domain, account)
            if user is None:
                raise RequestRejected(f"User not found: {json.dumps(account)}.")
            users.append(user["sAMAccountName"])
        remove_all = item.get("isRemoveAllO365License")
        if action == "REMOVE_O365_LICENSES" and remove_all not in ("true", "false"):
            raise RequestRejected('isRemoveAllO365License must be "true" or "false".')
        skus: list[dict[str, Any]] = []
        if not (action == "REMOVE_O365_LICENSES" and remove_all == "true"):
            skus = self._selected(item.get("selectedO365Licenses"), domain)
        return {"action": action, "users": users, "remove_all": remove_all == "true",
                "skus": skus}

    @staticmethod
    def _selected(selected: Any, domain: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(selected, dict) or not isinstance(
                selected.get("accountSKUDetailsList"), list) or not selected[
                "accountSKUDetailsList"]:
            raise RequestRejected("selectedO365Licenses.accountSKUDetailsList is mandatory.")
        chosen = []
        for sku in selected["accountSKUDetailsList"]:
            sku_id = sku.get("ACCOUNT_SKU_ID") if isinstance(sku, dict) else None
            if sku_id not in domain["skus"]:
                raise RequestRejected(f"Unknown license {sku_id!r}.")
            if not isinstance(sku.get("IS_SELECTED"), bool):
                raise RequestRejected("IS_SELECTED must be a boolean.")
            plans = sku.get("ServicePlans", [])
            if not isinstance(plans, list):
                raise RequestRejected("ServicePlans must be a list.")
            enabled = []
            for plan in plans:
                if not isinstance(plan, dict) or plan.get("SERVICE_NAME") not in domain["skus"][
                        sku_id].get("plans", []):
                    raise RequestRejected(f"Unknown service plan in {sku_id}: {plan!r}.")
                if not isinstance(plan.get("IS_SELECTED"), bool):
                    raise RequestRejected("ServicePlans[].IS_SELECTED must be a boolean.")
                if plan["IS_SELECTED"]:
                    enabled.append(plan["SERVICE_NAME"])
            if sku["IS_SELECTED"]:
                chosen.append({"sku": sku_id, "plans": sorted(enabled),
                               "listed": sorted(p["SERVICE_NAME"] for p in plans)})
        return chosen

    @staticmethod
    def _user(domain: dict[str, Any], account: Any) -> dict[str, Any] | None:
        """The one user an `accounts` entry names; a display name two users share is
        refused rather than guessed (AD does not keep display names unique)."""
        if not isinstance(account, dict):
            return None
        for key in ("displayName", "sAMAccountName", "userPrincipalName"):
            if key in account:
                found = [u for u in domain["users"] if u.get(key) == account[key]]
                if len(found) > 1:
                    raise RequestRejected(f"More than one user matches {json.dumps(account)}.")
                return found[0] if found else None
        return None

    def _execute(self, entry: dict[str, Any]) -> None:
        """Approval: the change happens now, or the request fails (capacity)."""
        domain = self.state["domains"][entry["domain"]]
        users = [u for u in domain["users"] if u["sAMAccountName"] in entry["users"]]
        if entry["action"] == "ASSIGN_O365_LICENSES":
            for sku in entry["skus"]:
                total = int(domain["skus"][sku["sku"]].get("total", 0))
                holders = sum(1 for u in domain["users"] if sku["sku"] in u["licences"])
                newcomers = sum(1 for u in users if sku["sku"] not in u["licences"])
                if holders + newcomers > total:
                    entry["status"] = "rejected"
                    entry["message"] = (f"Not enough {sku['sku']} licences: {holders} of "
                                        f"{total} assigned, {newcomers} more requested")
                    return
            for user in users:
                for sku in entry["skus"]:
                    all_plans = domain["skus"][sku["sku"]].get("plans", [])
                    user["licences"][sku["sku"]] = {
                        "disabled": sorted(p for p in all_plans if p not in sku["plans"])}
        else:
            for user in users:
                if entry["remove_all"]:
                    user["licences"] = {}
                for sku in entry["skus"]:
                    user["licences"].pop(sku["sku"], None)
        entry["status"] = "executed"
        entry["message"] = "Request executed."

    async def request_status(self, params: dict[str, str], _: dict[str, Any]) -> Response:
        entry = self.state["requests"].get(params.get("requestId", ""))
        if entry is None:
            return JSONResponse({"status": "0", "statusMessage": "No such request."})
        return JSONResponse({"status": "1", "requestId": entry["requestId"],
                             "requestStatus": entry["status"].capitalize(),
                             "statusMessage": entry["message"]})

    async def search_requests(self, params: dict[str, str], _: dict[str, Any]) -> Response:
        """Inferred (no public page): requests whose Subject or Description holds
        `searchText`, paged like SearchUser."""
        text = params.get("searchText", "").lower()
        found = [e for e in self.state["requests"].values()
                 if e["domain"] == params["domainName"]
                 and (text in str(e.get("subject", "")).lower()
                      or text in str(e.get("description", "")).lower())]
        start = max(int(params.get("startIndex") or 1), 1)
        size = max(int(params.get("range") or 100), 1)
        rows = [{"requestId": e["requestId"], "Subject": e.get("subject", ""),
                 "Description": e.get("description", ""),
                 "requestStatus": e["status"].capitalize(), "statusMessage": e["message"]}
                for e in found[start - 1 : start - 1 + size]]
        return JSONResponse({"status": "1", "count": len(found), "requests": rows})

    # ---- users ---------------------------------------------------------------------------
    async def search_user(self, params: dict[str, str], domain: dict[str, Any]) -> Response:
        if "range" not in params or "startIndex" not in params:
            return JSONResponse({"status": "0", "statusMessage": "range and startIndex are "
                                                                 "mandatory."})
        try:
            start = int(params["startIndex"])
            size = int(params["range"])
        except ValueError:
            return JSONResponse({"status": "0", "statusMessage": "range and startIndex must be "
                                                                 "numbers."})
        if start < 1 or size < 1:
            return JSONResponse({"status": "0", "statusMessage": "range and startIndex must be "
                                                                 "positive."})
        size = min(size, int(self.seed.get("max_range", 100)))
        text = params.get("searchText", "")
        users = [u for u in domain["users"] if text.lower() in u["displayName"].lower()]
        column = self.seed.get("licence_column", "O365_LICENSES")
        rows = [
            {"DISPLAY_NAME": u["displayName"], "SAM_ACCOUNT_NAME": u["sAMAccountName"],
             "USER_PRINCIPAL_NAME": u["userPrincipalName"],
             column: [{"ACCOUNT_SKU_ID": sku, "DISABLED_SERVICE_PLANS": v["disabled"]}
                      for sku, v in sorted(u["licences"].items())]}
            for u in users[start - 1 : start - 1 + size]
        ]
        # Real servers answer `count` in lower case (the page says `Count`) and often no
        # `status` at all: ManageEngine's own Zendesk integration reads `response.count`.
        return JSONResponse({"UsersList": rows, "count": len(users)})
