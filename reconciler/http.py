"""Shared HTTP plumbing: one place for timeouts, retries, rate limits and redaction.

Every provider talks to its vendor through a `VendorHttp`, which wraps an
`httpx.AsyncClient` handed in from outside (real network, or a sandbox app through
`httpx.ASGITransport`), so nothing here opens a socket on its own.

Retries: 429, 5xx, timeouts and dropped connections are retried with exponential
backoff and jitter, honouring `Retry-After`, but only for calls the provider marks
`repeatable`. A non-repeatable call (one that could do its work twice) is sent
once; its provider decides how to find out whether it happened.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from reconciler.errors import VendorError
from reconciler.model import Call, Limits, RequestPreview
from reconciler.secrets import REDACTOR, Redactor

log = logging.getLogger("reconciler.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_RETRY_AFTER = 60.0


def url_path(call: Call) -> str:
    """The call's path with every segment percent-encoded on its own.

    `/`, `?`, `#` and `%` inside an id become `%2F`, `%3F`, `%23`, `%25`; a segment
    that is only dots is encoded too, so no client or proxy folds it into a parent
    directory. httpx keeps the escapes as they are when it joins the base URL.
    """
    encoded = []
    for segment in call.path:
        part = quote(segment, safe="")
        if part in {".", ".."}:
            part = part.replace(".", "%2E")
        encoded.append(part)
    return "/" + "/".join(encoded)


def to_request(
    client: httpx.AsyncClient,
    call: Call,
    *,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
) -> httpx.Request:
    """The httpx request for a call, with the provider's auth headers/query added."""
    params = [*call.query, *(query or {}).items()]
    return client.build_request(
        call.method,
        httpx.URL(path=url_path(call)),
        params=params,
        json=call.body,
        data=dict(call.form) if call.form is not None else None,
        headers=dict(headers or {}),
    )


class RetryableResponse(Exception):
    """Raised inside the retry loop for a response worth trying again."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


@dataclass
class RetryPolicy:
    attempts: int = 6
    max_elapsed: float = 120.0
    initial_wait: float = 0.2
    max_wait: float = 10.0


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Parses `Retry-After` as seconds or an HTTP date; None when absent or unusable."""
    header = response.headers.get("Retry-After")
    if not header:
        return None
    try:
        return min(max(float(header), 0.0), MAX_RETRY_AFTER)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return min(max(when.timestamp() - time.time(), 0.0), MAX_RETRY_AFTER)


def _is_retryable(error: BaseException) -> bool:
    return isinstance(error, RetryableResponse | httpx.TimeoutException | httpx.TransportError)


def _never_reached_vendor(error: BaseException) -> bool:
    """True when the vendor certainly did not act: safe to resend even a one-shot call."""
    if isinstance(error, RetryableResponse):
        return error.response.status_code == 429
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class VendorHttp:
    """One vendor's HTTP client with its limits applied."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        limits: Limits | None = None,
        *,
        retry: RetryPolicy | None = None,
        redactor: Redactor = REDACTOR,
    ) -> None:
        limits = limits or Limits()
        retry = retry or RetryPolicy(
            attempts=limits.retries,
            initial_wait=limits.backoff_initial,
            max_wait=limits.backoff_max,
        )
        self.client = client
        self._limiter = AsyncLimiter(max_rate=max(limits.rate_limit, 0.001), time_period=1.0)
        self._concurrency = asyncio.Semaphore(max(limits.concurrency, 1))
        self._retry = retry
        self.waits: list[float] = []
        self._redactor = redactor
        self.retries = 0

    def preview(self, call: Call) -> RequestPreview:
        """The call as a reviewer sees it: full URL, body, every secret masked."""
        request = to_request(self.client, call)
        body: Any = call.body if call.body is not None else (dict(call.form) if call.form else None)
        return RequestPreview(
            method=call.method,
            url=self._redactor.text(str(request.url)),
            body=self._redactor.data(body),
        )

    async def send(
        self,
        call: Call,
        *,
        repeatable: bool,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Sends one call; retries transient failures only when `repeatable`.

        `headers` and `query` carry the provider's credentials: they are added here,
        never stored in the call. Raises VendorError (message redacted) when the call
        could not be completed. The caller interprets non-transient statuses itself.
        """
        should_retry = _is_retryable if repeatable else _never_reached_vendor

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, RetryableResponse):
                hinted = retry_after_seconds(error.response)
                if hinted is not None:
                    self.waits.append(hinted)
                    return hinted
            backoff = wait_random_exponential(
                multiplier=self._retry.initial_wait, max=self._retry.max_wait
            )
            waited = float(backoff(state))
            self.waits.append(waited)
            return waited

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            error = state.outcome.exception() if state.outcome else None
            log.info(
                "retrying %s %s after %s",
                call.method,
                self._redactor.text(url_path(call)),
                self._redactor.text(str(error)),
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry.attempts)
            | stop_after_delay(self._retry.max_elapsed),
            wait=wait,
            retry=retry_if_exception(should_retry),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    request = to_request(self.client, call, headers=headers, query=query)
                    return await self._send_once(request, repeatable=repeatable)
        except RetryableResponse as error:
            return error.response
        except httpx.HTTPError as error:
            kind = type(error).__name__
            raise VendorError(
                self._redactor.text(f"{call.method} {url_path(call)}: {kind}: {error}"),
                code="transport",
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    async def _send_once(self, request: httpx.Request, *, repeatable: bool) -> httpx.Response:
        async with self._concurrency:
            await self._limiter.acquire()
            response = await self.client.send(request)
        if response.status_code == 429 or (repeatable and response.status_code in RETRY_STATUSES):
            raise RetryableResponse(response)
        return response


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object, or {} when it is not one.

    For reading vendors' error bodies: a proxy's HTML page or an empty body must still
    produce a clear message, never a parsing exception.
    """
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def new_client(
    base_url: str,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float | None = None,
    connections: int = 8,
) -> httpx.AsyncClient:
    """An AsyncClient with the project's timeouts, on the network or a given transport.

    The pool holds as many connections as the provider may have calls in flight:
    more would never be used, and httpcore scans its whole pool on every request.
    """
    chosen = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout, connect=timeout)
    pool = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=chosen, limits=pool)
