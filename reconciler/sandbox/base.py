"""What every vendor simulator shares: state, persistence, request log, faults, admin.

A simulator is a product feature (the demo, the tests and the benchmarks run on
it), written from the vendor's documentation alone: it imports nothing from
`reconciler.providers`, so it cannot agree with a provider's bugs.

Each simulator keeps its whole state as JSON-able data. With a `state_dir` the
state survives between CLI runs (`--sandbox` mode); the request log is appended
to `<name>.requests.jsonl` there too, so a test can assert on what a separate
process sent. Sandbox-only endpoints live under `/_sandbox/` (never a vendor path):

- `GET /_sandbox/requests`  the request log;
- `GET /_sandbox/state`     the current state;
- `POST /_sandbox/reset`    back to the seed state;
- `GET|PUT /_sandbox/faults` fault settings (see `Faults`);
- `GET /_sandbox/approvals`  requests waiting for an approver (a vendor whose changes
  wait for a human: `Simulator.waiting_approval`), 404 for a vendor with none;
- `POST /_sandbox/approvals/{id}/approve|reject` the approver's decision.
- `GET|DELETE /_sandbox/in-flight` requests being handled now and the peak seen
  (DELETE starts a new peak), to check a client's concurrency without timing it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/_sandbox"


class DroppedConnection(Exception):
    """Raised inside a simulator to cut the connection (the client sees a transport error)."""


class ApprovalRefused(Exception):
    """An approver's decision the simulator cannot take: `status` is the admin answer's
    HTTP status (404 no such request waiting, 409 already decided)."""

    def __init__(self, message: str, status: int) -> None:
        self.status = status
        super().__init__(message)


class Faults(BaseModel):
    """Fault settings, from the seed file's `faults:` key or `PUT /_sandbox/faults`.

    Rates are probabilities per request; `seed` makes a run repeatable.
    `drop_response_rate` processes the request and then cuts the connection before
    the client reads the answer: the nastiest case for duplicate changes.
    `stall_rate` holds a request for `stall_ms` before handling it, so a client
    with a shorter timeout gives up (a timeout the server never acted on).
    `rate_limit` (requests per second, 0 = none) is the vendor's own throttle: a
    token bucket holding one second of requests; beyond it, 429 with `Retry-After`.
    """

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = 0.0
    stall_rate: float = 0.0
    stall_ms: float = 0.0
    error_rates: dict[int, float] = Field(default_factory=dict)
    burst_429: int = 0
    retry_after: float = 0.0
    drop_connection_rate: float = 0.0
    drop_response_rate: float = 0.0
    only_changes: bool = False
    rate_limit: float = 0.0
    seed: int | None = None


class Simulator(ABC):
    """Base class of the vendor simulators."""

    name: ClassVar[str]
    seed_resource: ClassVar[str]
    environment: ClassVar[dict[str, str]] = {}
    """Connection fields of the matching YAML block → the sandbox's fixed value."""
    base_path: ClassVar[str] = ""
    """What follows the host in the vendor's base URL (e.g. `/commandcenter/api`)."""
    secondary_urls: ClassVar[tuple[str, ...]] = ()
    """Connection fields naming *other* URL variables this simulator also serves
    (a vendor with two API hosts); the sandbox points them at the simulator too."""

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        state_dir: Path | None = None,
    ) -> None:
        self.seed = copy.deepcopy(seed) if seed is not None else self.default_seed()
        self.state_dir = state_dir
        self.faults = Faults.model_validate(self.seed.get("faults") or {})
        faults_file = None if state_dir is None else state_dir / f"{self.name}.faults.json"
        if faults_file is not None and faults_file.exists():
            self.faults = Faults.model_validate_json(faults_file.read_text(encoding="utf-8"))
        self._random = random.Random(self.faults.seed)
        self._burst_left = self.faults.burst_429
        self._bucket = _TokenBucket(self.faults.rate_limit)
        self.requests: list[dict[str, Any]] = []
        self.in_flight = InFlight()
        self.state: dict[str, Any] = self._load_state()
        self.app: ASGIApp = _FaultsAndLog(self, Starlette(routes=self._all_routes()))

    # ---- for subclasses ------------------------------------------------------------
    @abstractmethod
    def routes(self) -> list[BaseRoute]:
        """The vendor's endpoints."""

    @abstractmethod
    def initial_state(self, seed: dict[str, Any]) -> dict[str, Any]:
        """Builds the mutable state from the seed document."""

    def admin_routes(self) -> list[BaseRoute]:
        """Extra sandbox-only endpoints (under /_sandbox/)."""
        return []

    def waiting_approval(self) -> list[dict[str, Any]] | None:
        """Requests waiting for a human approver at the vendor, each `{requestId,
        summary}`; None for a vendor whose changes never wait for one (the default).

        A vendor with approval workflows overrides this and `decide`, and the
        sandbox CLI (`reconciler sandbox approve|reject PROVIDER`) then plays the
        approver for it, in-process or served, with no vendor-specific code."""
        return None

    def decide(self, request_id: str, approve: bool) -> dict[str, Any]:
        """The approver's decision on one waiting request: approving carries it out as
        the vendor would on execution (its own checks included). Returns
        `{requestId, status, message}`; raises ApprovalRefused."""
        raise ApprovalRefused(f"the {self.name} simulator has no approvals", 404)

    @classmethod
    def example_document(cls) -> str | None:
        """A desired-state document that differs from the seed, if the vendor ships one
        (`seeds/<seed>.example.yaml`): the reliability tests run on it, so a vendor
        from its own package is put through them like a built-in one."""
        package = cls.__module__.rpartition(".")[0] or cls.__module__
        stem = cls.seed_resource.rsplit(".", 1)[0]
        example = resources.files(package).joinpath("seeds", f"{stem}.example.yaml")
        return example.read_text(encoding="utf-8") if example.is_file() else None

    @classmethod
    def default_seed(cls) -> dict[str, Any]:
        """The documented seed state, from `seeds/<seed_resource>` beside the simulator's
        own module, so a vendor shipped as its own package brings its seed along."""
        package = cls.__module__.rpartition(".")[0] or cls.__module__
        text = resources.files(package).joinpath("seeds", cls.seed_resource)
        loaded = yaml.safe_load(text.read_text(encoding="utf-8"))
        assert isinstance(loaded, dict)
        return loaded

    # ---- state and persistence ---------------------------------------------------------
    @property
    def _state_file(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / f"{self.name}.json"

    @property
    def _log_file(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / f"{self.name}.requests.jsonl"

    @property
    def _faults_file(self) -> Path | None:
        return None if self.state_dir is None else self.state_dir / f"{self.name}.faults.json"

    def _load_state(self) -> dict[str, Any]:
        path = self._state_file
        if path is not None and path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            assert isinstance(loaded, dict)
            return loaded
        return self.initial_state(copy.deepcopy(self.seed))

    def save(self) -> None:
        path = self._state_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.state, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)

    def reset(self) -> None:
        self.state = self.initial_state(copy.deepcopy(self.seed))
        self.requests.clear()
        self.save()
        self.set_faults(Faults.model_validate(self.seed.get("faults") or {}))
        faults = self._faults_file
        if faults is not None:
            faults.unlink(missing_ok=True)
        log = self._log_file
        if log is not None and log.exists():
            log.unlink()

    def record(self, entry: dict[str, Any]) -> None:
        self.requests.append(entry)
        log = self._log_file
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(entry, sort_keys=True) + "\n")

    def request_log(self) -> list[dict[str, Any]]:
        """Every request seen, including those of earlier processes in state_dir."""
        log = self._log_file
        if log is not None and log.exists():
            lines = log.read_text(encoding="utf-8").splitlines()
            return [json.loads(line) for line in lines if line.strip()]
        return list(self.requests)

    # ---- faults ------------------------------------------------------------------------
    def set_faults(self, faults: Faults, *, persist: bool = False) -> None:
        """Changes fault settings; `persist` keeps them for later processes (--sandbox)."""
        self.faults = faults
        path = self._faults_file
        if persist and path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(faults.model_dump_json(), encoding="utf-8")
        self._random = random.Random(faults.seed)
        self._burst_left = faults.burst_429
        self._bucket = _TokenBucket(faults.rate_limit)

    def throttle_wait(self) -> float:
        """Seconds until the vendor's throttle admits another request."""
        return self._bucket.wait()

    def draw_fault(self, changing: bool) -> str | int | None:
        """Decides this request's fault: an HTTP status, 'drop', 'drop-response' or None."""
        faults = self.faults
        if faults.only_changes and not changing:
            return None
        if self._burst_left > 0:
            self._burst_left -= 1
            return 429
        if not self._bucket.take():
            return 429
        roll = self._random.random()
        for status, rate in sorted(faults.error_rates.items()):
            if roll < rate:
                return status
            roll -= rate
        if roll < faults.drop_connection_rate:
            return "drop"
        roll -= faults.drop_connection_rate
        if roll < faults.stall_rate:
            return "stall"
        roll -= faults.stall_rate
        if changing and roll < faults.drop_response_rate:
            return "drop-response"
        return None

    # ---- routing -----------------------------------------------------------------------
    def _all_routes(self) -> list[BaseRoute]:
        async def requests(_: Request) -> Response:
            return JSONResponse(self.request_log())

        async def state(_: Request) -> Response:
            return JSONResponse(self.state)

        async def reset(_: Request) -> Response:
            self.reset()
            return JSONResponse({"reset": True})

        async def in_flight(request: Request) -> Response:
            if request.method == "DELETE":
                self.in_flight.peak = self.in_flight.now
            return JSONResponse(self.in_flight.as_json())

        async def faults(request: Request) -> Response:
            if request.method == "PUT":
                self.set_faults(Faults.model_validate(await request.json()))
            return JSONResponse(self.faults.model_dump(mode="json"))

        async def approvals(_: Request) -> Response:
            waiting = self.waiting_approval()
            if waiting is None:
                return JSONResponse({"error": f"the {self.name} simulator has no approvals"},
                                    status_code=404)
            return JSONResponse({"waiting": waiting})

        async def decision(request: Request) -> Response:
            verdict = request.path_params["decision"]
            if verdict not in ("approve", "reject"):
                return JSONResponse({"error": "say approve or reject"}, status_code=404)
            try:
                decided = self.decide(request.path_params["request_id"], verdict == "approve")
            except ApprovalRefused as refused:
                return JSONResponse({"error": str(refused)}, status_code=refused.status)
            self.save()
            return JSONResponse(decided)

        admin: list[BaseRoute] = [
            Route(f"{ADMIN_PREFIX}/approvals", approvals, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/approvals/{{request_id}}/{{decision}}", decision,
                  methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/requests", requests, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/state", state, methods=["GET"]),
            Route(f"{ADMIN_PREFIX}/reset", reset, methods=["POST"]),
            Route(f"{ADMIN_PREFIX}/faults", faults, methods=["GET", "PUT"]),
            Route(f"{ADMIN_PREFIX}/in-flight", in_flight, methods=["GET", "DELETE"]),
        ]
        return admin + self.admin_routes() + self.routes()


CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class InFlight:
    """Vendor requests being handled right now, and the most there ever were at once.

    What a client's concurrency setting really did, seen from the vendor's side: a
    test reads `peak` (`GET /_sandbox/in-flight` when served) instead of timing calls.
    """

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            yield
        finally:
            self.now -= 1

    def as_json(self) -> dict[str, int]:
        return {"in_flight": self.now, "peak": self.peak}


class _TokenBucket:
    """The vendor's throttle: `rate` tokens a second, at most one second's worth saved."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def take(self) -> bool:
        if self.rate <= 0:
            return True
        self._refill()
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next token."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)


class _FaultsAndLog:
    """ASGI middleware: logs every vendor request, injects faults, persists changes."""

    def __init__(self, simulator: Simulator, app: ASGIApp) -> None:
        self.simulator = simulator
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        with self.simulator.in_flight.counting():
            await self._vendor_request(scope, receive, send)

    async def _vendor_request(self, scope: Scope, receive: Receive, send: Send) -> None:
        simulator = self.simulator
        path: str = scope["path"]
        body = await _read_body(receive)
        method: str = scope["method"]
        changing = method in CHANGING_METHODS
        if simulator.faults.latency_ms:
            await asyncio.sleep(simulator.faults.latency_ms / 1000.0)
        fault = simulator.draw_fault(changing)
        entry: dict[str, Any] = {
            "method": method,
            "path": path,
            "raw_path": (scope.get("raw_path") or path.encode()).decode("latin-1"),
            "query": scope.get("query_string", b"").decode("latin-1"),
            "body": _decode(body),
            "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
        }
        if fault == "stall":
            simulator.record({**entry, "status": "stalled"})
            await asyncio.sleep(simulator.faults.stall_ms / 1000.0)
        if fault == "drop":
            entry["status"] = "dropped"
            simulator.record(entry)
            await _cut(send, "sandbox fault: connection dropped")
        if isinstance(fault, int):
            entry["status"] = fault
            simulator.record(entry)
            wait = max(simulator.faults.retry_after, simulator.throttle_wait())
            headers = {"Retry-After": f"{wait:.3f}"} if fault == 429 else {}
            await JSONResponse({"error": "sandbox fault"}, fault, headers=headers)(
                scope, _replay(b""), send
            )
            return
        status_holder: dict[str, int] = {}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
            if fault == "drop-response":
                return
            await send(message)

        await self.app(scope, _replay(body), capture)
        entry["status"] = status_holder.get("status", 0)
        if changing:
            simulator.save()  # before the log line: a logged change is always a saved one
        simulator.record(entry)
        if fault == "drop-response":
            await _cut(send, "sandbox fault: response dropped after the change was made")


async def _cut(send: Send, reason: str) -> None:
    """Starts a response and dies mid-body: over a socket the client sees the connection
    close early (uvicorn closes it on an exception after the start), in-process the
    SandboxTransport turns the exception into the same transport error."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1024"), (b"content-type", b"application/json")]})
    raise DroppedConnection(reason)


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Callable[[], Awaitable[Message]]:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


def _decode(body: bytes) -> Any:
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text
