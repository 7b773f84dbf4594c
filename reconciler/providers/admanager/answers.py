"""Reading ADManager Plus answers: pure functions from a response to data or a VendorError.

Kept apart from the HTTP code so the contract tests can feed them the vendor's
published answers (tests/fixtures/vendors/admanager/) without a server.

ADManager is loose about its own vocabulary, and every reading here tolerates
what its real servers and its own integrations show:
- SearchUser documents `Count`, but servers answer `count` (ManageEngine's
  Zendesk integration reads `response.count`), and some answers carry no
  `status` at all; either total is accepted and a missing status is not an error;
- `status` is `"1"`/`"0"` on workflow calls and `"SUCCESS"`/`"SEVERE"` elsewhere;
- errors also come as `{"SEVERITY": "SEVERE", "STATUS_MESSAGE": ...}` or
  `{"ERROR_CODE": "00000003"}` (read by the same integration's error handler).
An error always names the HTTP status and the vendor's message, never `None`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from reconciler.errors import VendorError

SUCCESS = frozenset({"1", "success", "true"})
State = Literal["pending", "executed", "rejected", "unknown"]
UNKNOWN_REQUEST = re.compile(r"no such request|request (id )?(is )?(not found|invalid|does not "
                             r"exist)|invalid request ?id|unknown request", re.IGNORECASE)
"""How a status answer says the server no longer knows the id (the sandbox after a reset
says `No such request.`; the wording of real servers is inferred, so several forms)."""
FAILURE_WORDS = frozenset({"0", "severe", "failure", "failed", "false", "error"})


@dataclass(frozen=True)
class UserPage:
    """One SearchUser page: its rows and the total the server reports (None if absent)."""

    rows: tuple[dict[str, Any], ...]
    total: int | None


@dataclass(frozen=True)
class Created:
    """A CreateWorkFlowRequest answer: the request id, or the vendor's refusal."""

    request_id: str | None
    message: str


@dataclass(frozen=True)
class RequestState:
    """Where one workflow request stands (inferred status call)."""

    request_id: str
    state: State
    message: str
    description: str = ""


def body_of(response: httpx.Response, what: str) -> Any:
    """The JSON body, or a VendorError naming the HTTP status and what came instead."""
    try:
        return response.json()
    except ValueError:
        text = response.text.strip().replace("\n", " ")[:200] or "an empty body"
        raise VendorError(f"ADManager {what}: HTTP {response.status_code}, not JSON: {text}",
                          status=response.status_code) from None


def vendor_message(data: Any) -> str:
    """The vendor's words in any of its error shapes; the raw body when it has none."""
    item = data[0] if isinstance(data, list) and data else data
    if isinstance(item, dict):
        for key in ("statusMessage", "STATUS_MESSAGE", "message", "error"):
            value = item.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        if item.get("ERROR_CODE") is not None:
            return f"error code {item['ERROR_CODE']}"
    text = str(data)
    return text[:200] if text.strip() else "no message"


def failed(data: Any) -> bool:
    """True when the body says the call failed, in any of ADManager's ways."""
    if not isinstance(data, dict):
        return True
    if data.get("SEVERITY") is not None or data.get("ERROR_CODE") is not None:
        return True
    status = data.get("status")
    return status is not None and str(status).strip().lower() not in SUCCESS


def checked(response: httpx.Response, what: str) -> dict[str, Any]:
    """A successful JSON object answer; VendorError `ADManager <what> failed (HTTP n): msg`."""
    data = body_of(response, what)
    if not response.is_success or failed(data):
        raise VendorError(f"ADManager {what} failed (HTTP {response.status_code}): "
                          f"{vendor_message(data)}", status=response.status_code)
    assert isinstance(data, dict)
    return data


def user_page(response: httpx.Response, what: str, rows_key: str) -> UserPage:
    """A SearchUser page: rows under `rows_key`, total from `count` or `Count`."""
    data = checked(response, what)
    rows = data.get(rows_key)
    if rows is None:
        rows = []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise VendorError(f"ADManager {what}: `{rows_key}` is not a list of users "
                          "(check connection.users_key)")
    total = data.get("count", data.get("Count"))
    try:
        parsed = int(total) if total is not None else None
    except (TypeError, ValueError):
        raise VendorError(f"ADManager {what}: count {total!r} is not a number") from None
    return UserPage(rows=tuple(rows), total=parsed)


def licences(row: dict[str, Any], column: str) -> dict[str, list[str]]:
    """A user row's O365 licences: SKU id → sorted disabled service plans.

    The column's shape is inferred, so an entry that is not `{ACCOUNT_SKU_ID, ...}` is
    an error, never skipped: read as "holds nothing" it would plan assignments of SKUs
    the user already holds, and a removal would never see them."""
    held = row.get(column) or []
    if not isinstance(held, list) or not all(
            isinstance(entry, dict) and entry.get("ACCOUNT_SKU_ID") for entry in held):
        raise VendorError(f"ADManager SearchUser: column {column} of "
                          f"{row.get('DISPLAY_NAME', '?')} is not a list of "
                          "{ACCOUNT_SKU_ID, DISABLED_SERVICE_PLANS} (check "
                          "connection.licence_column)")
    return {str(entry["ACCOUNT_SKU_ID"]): sorted(entry.get("DISABLED_SERVICE_PLANS") or [])
            for entry in held}


def created(response: httpx.Response) -> Created:
    """The first answer of a CreateWorkFlowRequest batch (reconciler sends one request)."""
    data = body_of(response, "CreateWorkFlowRequest")
    answer = data[0] if isinstance(data, list) and data else data
    request_id = answer.get("requestId") if isinstance(answer, dict) else None
    if not response.is_success or failed(answer) or request_id is None:
        status = answer.get("status") if isinstance(answer, dict) else None
        return Created(request_id=None,
                       message=f"ADManager refused the request (HTTP {response.status_code}, "
                               f"status {status if status is not None else 'missing'}): "
                               f"{vendor_message(data)}")
    return Created(request_id=str(request_id), message=vendor_message(answer))


def _state(raw: Any) -> State:
    word = str(raw or "").strip().lower()
    if word in {"executed", "completed", "closed"}:
        return "executed"
    if word in {"rejected", "failed", "cancelled", "canceled"}:
        return "rejected"
    return "pending"


def request_state(response: httpx.Response, request_id: str) -> RequestState:
    """The inferred status call's answer for one request id; `unknown` when the server
    says it has no such request (any other refusal is an error: a wrong AuthToken must
    not pass for a forgotten request)."""
    data = body_of(response, f"status of workflow request {request_id}")
    if response.is_success and failed(data) and UNKNOWN_REQUEST.search(vendor_message(data)):
        return RequestState(request_id=request_id, state="unknown", message=vendor_message(data))
    data = checked(response, f"status of workflow request {request_id}")
    return RequestState(request_id=str(data.get("requestId", request_id)),
                        state=_state(data.get("requestStatus")),
                        message=str(data.get("statusMessage") or ""))


def request_list(response: httpx.Response, what: str) -> list[RequestState]:
    """The inferred request search: `requests: [{requestId, requestStatus, Description}]`."""
    data = checked(response, what)
    rows = data.get("requests") or []
    if not isinstance(rows, list):
        raise VendorError(f"ADManager {what}: `requests` is not a list")
    return [RequestState(request_id=str(row.get("requestId")), state=_state(
                row.get("requestStatus")), message=str(row.get("statusMessage") or ""),
                description=str(row.get("Description") or ""))
            for row in rows if isinstance(row, dict) and row.get("requestId") is not None]
