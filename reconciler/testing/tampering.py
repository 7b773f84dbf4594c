"""Edits an attacker could make to a saved plan file, and a host that must hear nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
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


def _yaml_symlinked_outside(plan: dict[str, Any], port: int) -> None:
    """A directory inside the checkout whose YAML are symlinks to copies outside it.

    The copies say what the reviewed YAML says, so only the path check can refuse.
    """
    here = Path.cwd()
    outside = here.parent / f"{here.name}-outside"
    outside.mkdir()
    inside = here / "linked"
    inside.mkdir()
    for name in plan["config_paths"]:
        copy = outside / Path(name).name
        copy.write_bytes(Path(name).read_bytes())
        (inside / copy.name).symlink_to(copy)
    plan["config_paths"] = ["linked"]


def _yaml_name_with_nul(plan: dict[str, Any], port: int) -> None:
    plan["config_paths"] = ["desired/\x00.yaml"]


def _yaml_name_too_long(plan: dict[str, Any], port: int) -> None:
    plan["config_paths"] = ["desired/" + "y" * 5_000 + ".yaml"]


def _errors_excuse_a_removed_action(plan: dict[str, Any], port: int) -> None:
    """An `errors` entry claiming a provider could not be read, to excuse its missing
    action: a plan with errors is never applied, whatever they say."""
    removed = plan["actions"].pop()
    plan["errors"] = [{"provider": removed["provider"], "message": "could not be read"}]


TAMPERINGS: dict[str, Tamper] = {
    "errors-excuse": _errors_excuse_a_removed_action,
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
    "yaml-symlinked-outside": _yaml_symlinked_outside,
    "yaml-name-with-nul": _yaml_name_with_nul,
    "yaml-name-too-long": _yaml_name_too_long,
}

ONE_LINE = {"yaml-elsewhere", "yaml-symlinked-outside", "yaml-name-with-nul",
            "yaml-name-too-long", "format-version"}
"""Tamperings refused before anything is read: one line says why."""
