"""A vendor for the crash property: one simulator in its own process, over real HTTP.

    python -m reconciler.testing.crash_vendor PROVIDER SEED.json HOLDINGS

`HOLDINGS` names (`module:attribute`) the function that reads what the vendor holds
from the simulator's state (see `reconciler.testing.crash.resolve_holdings`).

Prints the base URL, then serves until stdin closes. The simulator outlives every
reconciler process the test kills, as a real vendor would. Two test-only endpoints
sit beside the simulator's own `/_sandbox/` ones:

- `POST /_crash/arm {"pid": P, "after": N, "lose": L}`: when the N-th vendor-changing
  request after this call arrives, SIGKILL process P; then handle that request as
  usual (the client died with the request on the wire and the vendor still acts on
  it), or with `lose` drop it unhandled (it never reached the vendor). Requests
  already in flight are handled either way. `pid: 0` disarms;
- `GET /_crash/gone`: every (subject, license) a changing request took away since the
  last reset (unintended removals are found here, even when a later call put the
  license back).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from reconciler.sandbox.base import CHANGING_METHODS, Simulator
from reconciler.sandbox.registry import simulators
from reconciler.sandbox.serve import ServedSimulators
from reconciler.testing.crash import Holdings, resolve_holdings


class CrashVendor:
    """ASGI wrapper: the kill switch and the ledger of removals around one simulator."""

    def __init__(self, simulator: Simulator, holdings: Holdings) -> None:
        self.simulator = simulator
        self.holdings = holdings
        self.inner: ASGIApp = simulator.app
        self.armed: tuple[int, int, bool] | None = None
        self.changing = 0
        self.gone: set[tuple[str, str]] = set()
        self.held = self._keys()
        record = simulator.record

        def recording(entry: dict[str, Any]) -> None:
            record(entry)
            if entry["method"] in CHANGING_METHODS:
                now = self._keys()
                self.gone |= self.held - now
                self.held = now

        simulator.record = recording  # type: ignore[method-assign]

    def _keys(self) -> set[tuple[str, str]]:
        return {(s, lic) for s, lic, _ in self.holdings(self.simulator.state)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_crash/"):
            request = Request(scope, receive)
            if scope["path"] == "/_crash/arm":
                order = await request.json()
                pid, after, lose = int(order["pid"]), int(order["after"]), bool(order.get("lose"))
                self.armed, self.changing = ((pid, after, lose) if pid > 0 else None), 0
                answer: Any = {"armed": True}
            else:
                answer = sorted(self.gone)
            await JSONResponse(answer)(scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"] == "/_sandbox/reset":
            self.armed, self.gone = None, set()
            await self.inner(scope, receive, send)
            self.held = self._keys()
            return
        if scope["type"] == "http" and scope["method"] in CHANGING_METHODS and self.armed:
            self.changing += 1
            pid, after, lose = self.armed
            if self.changing >= after:
                self.armed = None
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if lose:
                    return
        await self.inner(scope, receive, send)


def main() -> None:
    provider, seed_file, holdings = sys.argv[1:4]
    simulator = simulators()[provider](seed=json.loads(Path(seed_file).read_text()))
    simulator.app = CrashVendor(simulator, resolve_holdings(holdings, provider))
    with ServedSimulators({provider: simulator}) as served:
        print(served.urls[provider], flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
