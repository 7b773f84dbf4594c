"""The sandbox's human approver: decides a simulator's waiting requests through its admin API.

Some vendors change nothing until a person approves (ADManager's workflow requests).
The sandbox plays that person. Both ways of running a simulator are reached the
same way, through its sandbox-only endpoints (`GET /_sandbox/approvals`, `POST
/_sandbox/approvals/{id}/approve|reject`): in-process over its ASGI transport, served
over HTTP. No vendor is named here: a simulator offers approvals or it does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx


class ApproverError(Exception):
    """The decision could not be taken (unknown id, a simulator with no approvals, ...)."""


@dataclass(frozen=True)
class Decided:
    """One request the approver decided, and what the vendor made of it."""

    request_id: str
    status: str
    message: str


def admin_root(base_url: str) -> str:
    """`scheme://host:port` of a served simulator: admin endpoints live at the host's root,
    not under the vendor's base path."""
    url = httpx.URL(base_url)
    return str(url.copy_with(path="/", query=None, fragment=None)).rstrip("/")


async def waiting(client: httpx.AsyncClient, provider: str) -> list[str]:
    """Ids of the requests waiting for an approver, oldest first."""
    answer = await client.get("/_sandbox/approvals")
    if answer.status_code == 404:
        raise ApproverError(f"the {provider} simulator has no requests that wait for an "
                            "approver (its vendor applies changes at once)")
    if not answer.is_success:
        raise ApproverError(f"the {provider} sandbox answered HTTP {answer.status_code} to "
                            f"{answer.request.url}: is it a reconciler sandbox?")
    rows = answer.json().get("waiting", [])
    return [str(row["requestId"]) for row in rows]


async def decide(
    client: httpx.AsyncClient,
    provider: str,
    request_ids: Sequence[str],
    *,
    approve: bool,
    everything: bool,
) -> list[Decided]:
    """Approves (or rejects) the given requests, or every waiting one with `everything`.

    The ids are checked against the waiting list before any is decided, so a typo in
    the third id does not leave two decided and the rest not.
    """
    if everything == bool(request_ids):
        raise ApproverError("name REQUEST_ID... or say --all (not both)")
    open_ids = await waiting(client, provider)
    chosen = open_ids if everything else list(dict.fromkeys(request_ids))
    unknown = [request_id for request_id in chosen if request_id not in open_ids]
    if unknown:
        raise ApproverError(f"{provider}: no request {', '.join(unknown)} waiting for an approver "
                            f"(waiting: {', '.join(open_ids) or 'none'})")
    verdict = "approve" if approve else "reject"
    decided: list[Decided] = []
    for request_id in chosen:
        answer = await client.post(f"/_sandbox/approvals/{request_id}/{verdict}")
        body = answer.json()
        if not answer.is_success:
            raise ApproverError(f"{provider}: {body.get('error', answer.text)}")
        decided.append(Decided(request_id=request_id, status=str(body["status"]),
                               message=str(body.get("message") or "")))
    return decided
