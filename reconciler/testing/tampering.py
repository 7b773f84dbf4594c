"""Edits an attacker could make to a saved plan file, and a host that must hear nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

Tamper = Callable[[dict[str, Any], int], None]


class Listener:
    """A TCP listener standing in for another host: it counts every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _host(plan: dict[str, Any], port: int) -> None:
    plan["actions"][0]["request"]["url"] = f"http://127.0.0.1:{port}/steal"


def _path(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["path"] = [*action["call"]["path"][:-1], "someone-else"]


def _host_in_path(plan: dict[str, Any], port: int) -> None:
    plan["actions"][0]["call"]["path"] = [f"http://127.0.0.1:{port}", "steal"]


def _body(plan: dict[str, Any], port: int) -> None:
    plan["actions"][0]["call"]["body"] = {"tampered": True, "callback": f"http://127.0.0.1:{port}/"}


def _query(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["query"] = [*action["call"]["query"], ["extra", "1"]]


def _added_action(plan: dict[str, Any], port: int) -> None:
    extra = dict(plan["actions"][0])
    extra["id"] = extra["id"] + ":again"
    plan["actions"].append(extra)


def _removed_action(plan: dict[str, Any], port: int) -> None:
    plan["actions"].pop()


def _repeatable_flag(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["repeatable"] = not action["repeatable"]


def _method(plan: dict[str, Any], port: int) -> None:
    action = plan["actions"][0]
    action["call"]["method"] = "DELETE" if action["call"]["method"] != "DELETE" else "POST"


def _version(plan: dict[str, Any], port: int) -> None:
    plan["format_version"] = 99


def _unknown_provider(plan: dict[str, Any], port: int) -> None:
    plan["actions"][0]["provider"] = "evil"


def _yaml_elsewhere(plan: dict[str, Any], port: int) -> None:
    plan["config_paths"] = ["/etc"]


TAMPERINGS: dict[str, Tamper] = {
    "host": _host,
    "path": _path,
    "host-in-path": _host_in_path,
    "body": _body,
    "query": _query,
    "method": _method,
    "added-action": _added_action,
    "removed-action": _removed_action,
    "repeatable-flag": _repeatable_flag,
    "format-version": _version,
    "unknown-provider": _unknown_provider,
    "yaml-elsewhere": _yaml_elsewhere,
}
