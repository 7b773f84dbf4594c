"""Shared HTTP plumbing: one place for timeouts, retries, rate limits and redaction.

Every provider talks to its vendor through a `VendorHttp`, which wraps an
`httpx.AsyncClient` handed in from outside (real network, or a sandbox app through
`httpx.ASGITransport`), so nothing here opens a socket on its own. On the default
network transport a call skips the client's own `send` when it would do nothing
(`reconciler.wire`): the same request for 0.4 ms of CPU instead of 0.7.

Retries are bounded by time, not by a count of 429s: a throttled call waits as
long as `Retry-After` says, within a per-call budget (`Limits.retry_budget`,
60 s by default). 5xx, timeouts and dropped connections are retried with
exponential backoff and jitter, but only for calls the provider marks
`repeatable`; a non-repeatable call (one that could do its work twice) is sent
once and its provider decides how to find out whether it happened. The rate limit
adapts to the vendor's 429s (`reconciler.throttle`), so a vendor limit below the
configured rate slows the client down instead of failing calls.

A vendor with a request quota per window (Yext: 5,000 an hour) says when it restarts
(`Rate-Limit-Reset`, epoch seconds) and how much is left (`Rate-Limit-Remaining`). Once
it is used (a 429, or an answer with nothing remaining), every call waits for the
reset when that fits in its retry budget, and otherwise is not sent at all:
`QuotaUsed` names the reset time, and no call is left in doubt (a 429 did nothing).

Sending is also where the journal's "started" row is written (`announcing`): only
when a request has its slot and its token and is about to leave.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import functools
import logging
import math
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import quote

import httpx

from reconciler.errors import VendorError
from reconciler.model import Call, Limits, RequestPreview
from reconciler.secrets import REDACTOR, Redactor
from reconciler.throttle import AdaptiveRate
from reconciler.transport import network_transport, proxy_mounts
from reconciler.wire import DirectSender, Outgoing

log = logging.getLogger("reconciler.http")

Item = TypeVar("Item")
Result = TypeVar("Result")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


def url_path(call: Call) -> str:
    """The call's path with every segment percent-encoded on its own.

    `/`, `?`, `#` and `%` inside an id become `%2F`, `%3F`, `%23`, `%25`; a segment
    that is only dots is encoded too, so no client or proxy folds it into a parent
    directory. httpx keeps the escapes as they are when it joins the base URL.

    `$` alone stays literal: RFC 3986 makes it plain data in a segment (a sub-delim
    that no common server splits on, unlike `;`, which Tomcat strips as a path
    parameter), and OData's system segments (`$batch`, `$ref`, `$value`) are sent
    literally by every Microsoft SDK; RFC 3986 §2.2 does not make `%24batch` the
    same URI, so a server may route it elsewhere.
    """
    encoded = []
    for segment in call.path:
        part = quote(segment, safe="$")
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
    secret_body: Mapping[str, Any] | None = None,
) -> httpx.Request:
    """The httpx request for a call, with the provider's auth headers/query added, and
    `secret_body`'s fields merged into the JSON body (the call itself never holds them).

    The URL is handed to httpx whole (`joined_url`): parsed once, where joining a
    relative path to the base URL parses it four times (a tenth of a request's CPU).
    """
    params = query_params(call, query)
    url = joined_url(client, call, params)
    return client.build_request(
        call.method,
        httpx.URL(path=url_path(call)) if url is None else url,
        params=params if url is None else None,
        json=json_body(call, secret_body),
        data=form_fields(call),
        headers=dict(headers or {}),
    )


def query_params(call: Call, query: Mapping[str, str] | None
                 ) -> list[tuple[str, str | int | float | bool | None]]:
    """The call's query, then the provider's credentials in the query (an API key)."""
    return [*call.query, *(query or {}).items()]


def form_fields(call: Call) -> dict[str, str] | None:
    """The call's form fields, for a form-encoded body (an OAuth token request)."""
    return dict(call.form) if call.form is not None else None


def json_body(call: Call, secret_body: Mapping[str, Any] | None) -> Any:
    """The call's JSON body with `secret_body`'s fields merged in (never stored)."""
    body = call.body
    if secret_body:
        if not isinstance(body, dict):
            raise TypeError("secret_body needs a call with a JSON object body")
        body = {**body, **secret_body}
    return body


def joined_url(client: httpx.AsyncClient, call: Call,
               params: Sequence[tuple[str, str | int | float | bool | None]]) -> str | None:
    """The URL httpx makes of the call's path joined to the client's base URL, with
    `params` as its query, built as httpx builds it (`Client._merge_url`,
    `QueryParams`) without parsing a URL. None for a base URL with its own query or
    fragment, which httpx joins in a way of its own. Pinned to httpx's own joining by
    tests/unit/test_preview_url.py."""
    prefix = _joined_prefix(client.base_url)
    if prefix is None:
        return None
    url = prefix + url_path(call)[1:]
    if params:
        url += "?" + str(httpx.QueryParams(list(params)))
    return url


def preview_url(client: httpx.AsyncClient, call: Call) -> str:
    """`str(to_request(client, call).url)` without building the request: a plan shows
    every action's URL (8,000 at 100k grants)."""
    url = joined_url(client, call, call.query)
    return url if url is not None else str(to_request(client, call).url)


@functools.lru_cache(maxsize=64)
def _joined_prefix(base: httpx.URL) -> str | None:
    """What httpx puts before a relative path it joins to `base` (its base URL always
    ends in `/`), or None for a base URL with a query or fragment."""
    if base.query or base.fragment:
        return None
    return str(base.copy_with(raw_path=base.raw_path + b"x"))[:-1]


@dataclass
class RetryPolicy:
    """How hard one call keeps trying; the defaults come from `Limits`.

    `max_elapsed` is the budget in seconds spent on the call's behalf: time on the
    wire and waits between attempts, not time queued behind this client's own other
    calls (a call retried at the back of a 10,000-action apply must not lose its
    budget to the queue). `attempts` caps only the attempts that reached the vendor
    and failed (5xx, timeouts, dropped connections): a 429 did nothing and the
    vendor said when to come back, so 429s are bounded by the time budget alone.
    """

    attempts: int = 6
    max_elapsed: float = 60.0
    initial_wait: float = 0.2
    max_wait: float = 10.0


def retry_after_seconds(response: httpx.Response) -> float | None:
    """Parses `Retry-After` as seconds or an HTTP date; None when absent or unusable.

    Not capped: a wait longer than the retry budget makes the call give up at once
    (with the vendor's figure in the error) instead of coming back too early.
    """
    header = response.headers.get("Retry-After")
    if not header:
        return None
    try:
        seconds = float(header)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def quota_reset_at(response: httpx.Response) -> float | None:
    """`Rate-Limit-Reset` (epoch seconds: when the vendor's quota window starts again),
    or None when absent or unusable. Yext sends it with `Rate-Limit-Limit` and
    `Rate-Limit-Remaining` on every answer; its Go client waits until then on a 429."""
    try:
        reset = float(response.headers.get("Rate-Limit-Reset", ""))
    except ValueError:
        return None
    return reset if math.isfinite(reset) and reset > 0 else None


def quota_used_up(response: httpx.Response) -> bool:
    """True when the answer says no request is left in the window (`Rate-Limit-Remaining: 0`)."""
    return str(response.headers.get("Rate-Limit-Remaining", "")).strip() == "0"


class QuotaUsed(VendorError):
    """The vendor's request quota is used until `resets_at` (epoch seconds), beyond the
    retry budget: nothing more is sent to it before then. A 429 did nothing, so no call
    is left in doubt; the next run after the reset picks up where this one stopped."""

    def __init__(self, message: str, resets_at: float) -> None:
        super().__init__(message, code="quota", status=429)
        self.resets_at = resets_at

    @property
    def resets_at_utc(self) -> str:
        return utc_minute(self.resets_at)


def utc_minute(epoch: float) -> str:
    """`HH:MM` (UTC) of the minute that contains no earlier moment than `epoch`
    (rounded up, so "resets at" is never before the reset)."""
    return dt.datetime.fromtimestamp(math.ceil(epoch / 60) * 60, dt.UTC).strftime("%H:%M")


_MESSAGE_KEYS = ("message", "error_description", "statusMessage", "errorMessage", "error",
                 "detail", "title", "errorString")


def describe(response: httpx.Response) -> str:
    """`HTTP 429 Too Many Requests: <the vendor's message>`, for any vendor's error body.

    Never empty and never `None`: when the body holds no recognisable message the
    status line alone is the description. Providers with a richer error format
    describe it themselves and may fall back to this.
    """
    status = f"HTTP {response.status_code}"
    if response.reason_phrase:
        status += f" {response.reason_phrase}"
    body = json_object(response)
    for key in _MESSAGE_KEYS:
        value = body.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("code")
        if isinstance(value, str | int) and str(value).strip():
            return f"{status}: {value}"
    if not body:
        text = response.text.strip() if response.content else ""
        if text and len(text) <= 200 and not text.startswith("<"):
            return f"{status}: {text}"
    return status


@dataclass
class Announcement:
    """The applier's hook for one action: awaited once, just before its call is sent.

    The journal's "started" row must be durable before a vendor-changing call leaves,
    but written no earlier than needed: a row written while the action still waits
    for a connection slot or a rate-limit token would leave it "in doubt" after a
    crash although it was never sent. So the HTTP layer, which knows when a request
    really goes out, awaits the hook after the slot and the token are granted.

    Which sends announce: `call` itself (providers send `action.call` as is), and,
    as a safety net, any vendor-changing request (not GET) made on the action's
    behalf, e.g. a login POST: announcing early is harmless, sending a change with
    no durable row is not. Read-only GETs (lookups, token checks) never announce.
    """

    call: Call
    hook: Callable[[], Awaitable[None]]
    _done: asyncio.Future[None] | None = None

    @property
    def fired(self) -> bool:
        """True once the hook ran: the call may have reached the vendor."""
        return self._done is not None and self._done.done() and self._done.exception() is None

    def covers(self, call: Call) -> bool:
        return call is self.call or call.method != "GET" or call == self.call

    async def before_send(self, call: Call) -> None:
        if not self.covers(call):
            return
        if self._done is None:
            self._done = asyncio.get_running_loop().create_future()
            try:
                await self.hook()
            except BaseException as error:
                self._done.set_exception(error)
                self._done.exception()  # retrieved here; later senders re-raise it
                raise
            self._done.set_result(None)
            return
        await asyncio.shield(self._done)


ANNOUNCE: ContextVar[Announcement | None] = ContextVar("reconciler_announce", default=None)
"""Set by the applier in each action's task; read by `VendorHttp` before each send."""


@contextmanager
def announcing(call: Call, hook: Callable[[], Awaitable[None]]) -> Iterator[Announcement]:
    """Within this block, sending `call` (or any change) first awaits `hook`, once."""
    announcement = Announcement(call, hook)
    token = ANNOUNCE.set(announcement)
    try:
        yield announcement
    finally:
        ANNOUNCE.reset(token)


@contextmanager
def not_announcing() -> Iterator[None]:
    """Sends made here belong to no action (e.g. a `confirm` lookup after a lost call)."""
    token = ANNOUNCE.set(None)
    try:
        yield
    finally:
        ANNOUNCE.reset(token)


@dataclass
class _Attempt:
    response: httpx.Response | None = None
    error: httpx.HTTPError | None = None
    wire: float = 0.0
    """Seconds from the send to the answer (or the error): what counts against the budget."""


def origin_of(url: str | httpx.URL) -> str:
    """`scheme://host:port` of a URL (the port always shown): where a connection goes."""
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}.get(parsed.scheme)
    return f"{parsed.scheme}://{parsed.host}{f':{port}' if port else ''}"


def failure_reason(error: BaseException) -> str:
    """What went wrong on the wire, in words: the OS's reason behind httpx's wrapper.

    httpx says `All connection attempts failed` for a refused port and an unknown host
    alike; the cause chain holds the real reason.
    """
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return f"host not found ({seen.strerror or seen})"
        if isinstance(seen, httpx.TimeoutException) and seen is error:
            return f"no answer in time ({type(seen).__name__})"
        seen = seen.__cause__ or seen.__context__
    return _error_text(error) if isinstance(error, httpx.HTTPError) else str(error)


def unreachable(origin: str, source: str, error: BaseException) -> str:
    """`cannot reach http://127.0.0.1:9 (from YEXT_BASE_URL): connection refused`: the
    host, where its URL came from (what to fix), and why."""
    where = f" ({source})" if source else ""
    return f"cannot reach {origin}{where}: {failure_reason(error)}"


def _never_reached_vendor(error: httpx.HTTPError) -> bool:
    """True when the vendor certainly did not act: safe to resend even a one-shot call.

    Every transport offered raises these only before the request was written
    (`reconciler.transport` maps aiohttp's errors so); a reset after writing is in doubt.
    """
    return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


class VendorHttp:
    """One vendor's HTTP client with its limits applied.

    `retries` (total retries), `throttled` (429s seen) and `waits` (every wait
    between attempts) are counters for tests and benchmark figures.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        limits: Limits | None = None,
        *,
        retry: RetryPolicy | None = None,
        redactor: Redactor = REDACTOR,
        origins: Mapping[str, str] | None = None,
    ) -> None:
        limits = limits or Limits()
        retry = retry or RetryPolicy(
            attempts=limits.retries,
            max_elapsed=limits.retry_budget,
            initial_wait=limits.backoff_initial,
            max_wait=limits.backoff_max,
        )
        self.client = client
        self._direct = DirectSender.of(client)
        """Sends past httpx's client when it has nothing to add (`reconciler.wire`)."""
        self.origins = dict(origins or {})
        """`scheme://host:port` → where that URL came from (`from YEXT_BASE_URL`, `the
        vendor's default URL`): a transport error names both, so it says what to fix."""
        self.rate = AdaptiveRate(limits.rate_limit)
        self._slots = max(limits.concurrency, 1)
        self._concurrency = asyncio.Semaphore(self._slots)
        self._retry = retry
        self.waits: list[float] = []
        self._redactor = redactor
        self.retries = 0
        self.throttled = 0
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        """How waits between attempts are slept (tests observe them instead)."""
        self.clock: Callable[[], float] = time.time
        """Wall-clock epoch seconds, to compare with a vendor's `Rate-Limit-Reset`."""
        self.quota_until: float | None = None
        """When the vendor said its quota is used: until then, wait or send nothing."""

    async def each(self, fn: Callable[[Item], Awaitable[Result]],
                   items: Sequence[Item]) -> list[Result]:
        """`fn(item)` for every item, results in item order, a few at a time.

        For a per-subject read (one call per client): a task per item would hold
        100k suspended coroutines and their futures while the concurrency bound lets
        16 through. Twice the concurrency keeps every slot busy while some workers
        parse; the first error propagates as from `asyncio.gather`.
        """
        results: list[Result | None] = [None] * len(items)
        queue = iter(enumerate(items))

        async def worker() -> None:
            for index, item in queue:
                results[index] = await fn(item)

        workers = min(len(items), 2 * self._slots)
        await asyncio.gather(*(worker() for _ in range(workers)))
        return cast(list[Result], results)

    def preview(self, call: Call) -> RequestPreview:
        """The call as a reviewer sees it: full URL, body, every secret masked."""
        body: Any = call.body if call.body is not None else (dict(call.form) if call.form else None)
        return RequestPreview(
            method=call.method,
            url=self._redactor.text(preview_url(self.client, call)),
            body=self._redactor.data(body),
        )

    async def send(
        self,
        call: Call,
        *,
        repeatable: bool,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
        secret_body: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Sends one call; retries transient failures only when `repeatable`.

        `headers` and `query` carry the provider's credentials, and `secret_body` the
        secret fields a vendor wants in the JSON body (a user's password): they are added
        here, to each attempt's request only, never stored in the call, journaled or
        logged (a call is logged by method and path). A 429 is retried for every call (the
        vendor did nothing), after `Retry-After` when given, until the time budget is spent;
        then VendorError(code="throttled") names the status and the vendor's message.
        5xx and timeouts are retried only when `repeatable`; when those retries run
        out the last response is returned and the caller interprets it. A transport
        failure that is not retried raises VendorError(code="transport").
        """
        policy = self._retry
        spent = 0.0
        failures = 0
        tries = 0
        while True:
            spent += await self._await_quota(call, spent)
            request = self._request(call, headers, query, secret_body)
            attempt = await self._send_once(call, request)
            tries += 1
            spent += attempt.wire
            response, error = attempt.response, attempt.error
            hint: float | None = None
            source = "Retry-After"
            if response is not None:
                if response.status_code == 429:
                    hint = retry_after_seconds(response)
                    reset = quota_reset_at(response)
                    if reset is not None:
                        self._quota_used(reset)
                        if hint is None and reset > self.clock():
                            hint, source = reset - self.clock(), "Rate-Limit-Reset"
                elif repeatable and response.status_code in RETRY_STATUSES:
                    failures += 1
                else:
                    return response
            else:
                assert error is not None
                if not (repeatable or _never_reached_vendor(error)):
                    raise self._transport_error(call, error)
                failures += 1
            wait = hint if hint is not None else self._backoff(tries)
            reason = describe(response) if response is not None else _error_text(error)
            why = None
            if failures >= policy.attempts:
                why = f"{failures} failed attempts, the limit (limits.retries)"
            elif spent + wait > policy.max_elapsed and hint is not None:
                why = f"{source} {wait:.1f} s is beyond the retry budget of " \
                    f"{policy.max_elapsed:g} s"
            elif spent + wait > policy.max_elapsed:
                why = f"the retry budget of {policy.max_elapsed:g} s is spent"
            if why is not None and hint is not None and response is not None \
                    and response.status_code == 429 and quota_reset_at(response) is not None:
                raise self._quota_error(call, f"{reason} ({tries} attempts; {why})")
            if why is not None:
                return self._give_up(call, response, error, f"{reason} ({tries} attempts "
                                     f"in {spent:.1f} s; {why})")
            self.retries += 1
            self.waits.append(wait)
            log.info("retrying %s %s in %.2f s after %s", call.method,
                     self._redactor.text(url_path(call)), wait, self._redactor.text(reason))
            await self.sleep(wait)
            spent += wait

    def _request(self, call: Call, headers: Mapping[str, str] | None,
                 query: Mapping[str, str] | None,
                 secret_body: Mapping[str, Any] | None) -> httpx.Request | Outgoing:
        """One attempt's request: encoded for the direct path when the client allows it
        (`reconciler.wire`), else httpx's own."""
        direct = self._direct
        if direct is not None and direct.usable():
            params = query_params(call, query)
            url = joined_url(self.client, call, params)
            if url is not None:
                return direct.outgoing(call.method, url, headers or {},
                                       json_body(call, secret_body), form_fields(call))
        return to_request(self.client, call, headers=headers, query=query,
                          secret_body=secret_body)

    def _quota_used(self, reset: float) -> None:
        self.quota_until = max(self.quota_until or 0.0, reset)

    async def _await_quota(self, call: Call, spent: float) -> float:
        """Before an attempt: when the vendor said its quota is used, wait for the reset
        if that fits in the call's retry budget, else send nothing (QuotaUsed). Returns
        the seconds waited (they count against the budget)."""
        if self.quota_until is None:
            return 0.0
        wait = self.quota_until - self.clock()
        if wait <= 0:
            self.quota_until = None
            return 0.0
        if spent + wait > self._retry.max_elapsed:
            raise self._quota_error(call, f"not sent: the quota resets in {wait:.0f} s, beyond "
                                          f"the retry budget of {self._retry.max_elapsed:g} s")
        self.waits.append(wait)
        log.info("quota used: waiting %.1f s for its reset before %s %s", wait, call.method,
                 self._redactor.text(url_path(call)))
        await self.sleep(wait)
        return wait

    def _quota_error(self, call: Call, detail: str) -> QuotaUsed:
        assert self.quota_until is not None
        where = f"{call.method} {url_path(call)}"
        message = self._redactor.text(f"quota used; quota resets at "
                                      f"{utc_minute(self.quota_until)} (UTC) ({where}: {detail})")
        log.warning("%s", message)
        return QuotaUsed(message, self.quota_until)

    def _backoff(self, tries: int) -> float:
        """Full jitter: uniform in [0, min(max_wait, initial_wait * 2^(tries-1))]."""
        ceiling = min(self._retry.max_wait, self._retry.initial_wait * 2 ** min(tries - 1, 30))
        return random.uniform(0.0, ceiling) if ceiling > 0 else 0.0

    def _give_up(
        self,
        call: Call,
        response: httpx.Response | None,
        error: httpx.HTTPError | None,
        summary: str,
    ) -> httpx.Response:
        """429s out of time raise; other statuses go back to the provider to interpret."""
        where = f"{call.method} {url_path(call)}"
        log.warning("giving up on %s: %s", self._redactor.text(where), self._redactor.text(summary))
        if response is not None and response.status_code == 429:
            raise VendorError(self._redactor.text(f"{where}: {summary}"), code="throttled",
                              status=429)
        if response is not None:
            return response
        assert error is not None
        raise self._transport_error(call, error, summary.removeprefix(_error_text(error)))

    def _transport_error(self, call: Call, error: httpx.HTTPError, after: str = "") -> VendorError:
        origin = origin_of(to_request(self.client, call).url)
        message = (f"{unreachable(origin, self.origins.get(origin, ''), error)} "
                   f"({call.method} {url_path(call)}: {_error_text(error)}{after})")
        return VendorError(self._redactor.text(message), code="transport")

    async def _send_once(self, call: Call, request: httpx.Request | Outgoing) -> _Attempt:
        """One attempt: a concurrency slot, a rate token, the announcement, the send."""
        async with self._concurrency:
            ticket = await self.rate.acquire()
            announcement = ANNOUNCE.get()
            if announcement is not None:
                await announcement.before_send(call)
            sent = time.monotonic()
            try:
                if isinstance(request, Outgoing):
                    assert self._direct is not None
                    response = await self._direct.send(request)
                else:
                    response = await self.client.send(request)
            except httpx.HTTPError as error:
                return _Attempt(error=error, wire=time.monotonic() - sent)
        wire = time.monotonic() - sent
        if quota_used_up(response) and response.status_code != 429:
            reset = quota_reset_at(response)
            if reset is not None:  # the next request would be refused: wait or stop first
                self._quota_used(reset)
        if response.status_code == 429:
            self.throttled += 1
            self.rate.throttled(ticket, retry_after_seconds(response))
        elif response.status_code < 500:
            self.rate.succeeded()
        return _Attempt(response=response, wire=wire)


def _error_text(error: httpx.HTTPError | None) -> str:
    """`ReadTimeout: ...`: the exception's kind always, its text when it has one."""
    if error is None:
        return "no response"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a vendor's base URL, or None when it can.

    Checked before any client is made, so a typo in an environment variable is a
    configuration error naming the YAML setting, not a traceback from deep in httpx.
    """
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        return f"is not a valid URL ({error})"
    if parsed.scheme not in {"http", "https"}:
        return "must start with http:// or https://"
    if not parsed.host:
        return "has no host"
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"has an invalid port ({parsed.port})"
    return None


def new_client(
    base_url: str,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout: float | None = None,
    connections: int = 8,
) -> httpx.AsyncClient:
    """An AsyncClient with the project's timeouts, on the network or a given transport.

    Without a transport (the in-process sandbox hands one in) the network transport
    is `reconciler.transport`'s choice, its pool holding as many connections as the
    provider may have calls in flight: more would never be used. The environment's
    proxies are honoured as httpx honours them (`transport.proxy_mounts`).
    """
    chosen = DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout, connect=timeout)
    if transport is not None:
        return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=chosen)
    return httpx.AsyncClient(base_url=base_url, transport=network_transport(connections),
                             mounts=proxy_mounts(connections), timeout=chosen)
