"""Serves simulators over real HTTP on loopback ports, for the demo, e2e tests and benchmarks."""

from __future__ import annotations

import asyncio
import shlex
import socket
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import uvicorn

from reconciler.envnames import BASE_URL_SETTING
from reconciler.model import DesiredState
from reconciler.sandbox.base import Simulator
from reconciler.sandbox.registry import simulators
from reconciler.sandbox.runtime import credential_overlay

STARTUP_TIMEOUT = 15.0


class ServedSimulators:
    """Runs uvicorn servers for the given simulators in a background thread.

    Ports are bound before the servers start (port 0: the OS picks a free one),
    so URLs are known up front and two test runs never collide.
    """

    def __init__(self, running: Mapping[str, Simulator], host: str = "127.0.0.1") -> None:
        self.simulators = dict(running)
        self.host = host
        self.urls: dict[str, str] = {}
        self._servers: list[uvicorn.Server] = []
        self._sockets: list[socket.socket] = []
        self._thread: threading.Thread | None = None

    def start(self) -> dict[str, str]:
        for name, simulator in sorted(self.simulators.items()):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, 0))
            port = sock.getsockname()[1]
            self._sockets.append(sock)
            config = uvicorn.Config(
                simulator.app, lifespan="off", log_level="warning", access_log=False
            )
            self._servers.append(uvicorn.Server(config))
            self.urls[name] = f"http://{self.host}:{port}{simulator.base_path}"

        async def run_all() -> None:
            await asyncio.gather(
                *(
                    server.serve(sockets=[sock])
                    for server, sock in zip(self._servers, self._sockets, strict=True)
                )
            )

        self._thread = threading.Thread(target=lambda: asyncio.run(run_all()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not all(server.started for server in self._servers):
            if time.monotonic() > deadline or not self._thread.is_alive():
                self.stop()
                raise RuntimeError("sandbox servers did not start")
            time.sleep(0.01)
        return dict(self.urls)

    def stop(self) -> None:
        for server in self._servers:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=STARTUP_TIMEOUT)
        for sock in self._sockets:
            sock.close()

    def __enter__(self) -> ServedSimulators:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()


def environment_for(desired: DesiredState, urls: Mapping[str, str]) -> dict[str, str]:
    """The variables the YAML names, set to the served sandbox's URLs and credentials."""
    known = simulators()
    exports: dict[str, str] = {}
    for name, provider in sorted(desired.providers.items()):
        if name not in known or name not in urls:
            continue
        base_var = provider.connection.get(BASE_URL_SETTING)
        if isinstance(base_var, str) and base_var:
            exports[base_var] = urls[name]
        for field in known[name].secondary_urls:
            variable = provider.connection.get(field)
            if isinstance(variable, str) and variable:
                exports[variable] = urls[name].removesuffix(known[name].base_path)
        exports.update(credential_overlay(known[name], provider.connection))
    return exports


def serve(
    desired: DesiredState, *, host: str, env_file: Path | None, echo: Callable[[str], None]
) -> None:
    """Serves every simulator until interrupted, after printing `export` lines."""
    running = {name: cls() for name, cls in simulators().items()}
    with ServedSimulators(running, host) as served:
        exports = environment_for(desired, served.urls)
        lines = [f"export {name}={shlex.quote(value)}" for name, value in sorted(exports.items())]
        for line in lines:
            echo(line)
        if env_file is not None:
            env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for name, url in sorted(served.urls.items()):
            # Sandbox-only endpoints live at the host's root, not under the vendor's base path.
            admin = url.removesuffix(served.simulators[name].base_path)
            echo(f"# {name} simulator at {url} (admin: {admin}/_sandbox/requests)")
        echo("# serving; press Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            echo("# stopped")
