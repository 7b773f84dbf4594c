"""`reconciler sandbox serve` as a user runs it, in its own process, for tests.

An SDK test points an official client at the URLs and credentials the command prints,
so the vendor is judged over real HTTP by code we did not write. Every such test needs
the same three steps: start the command, read its `export NAME=value` lines up to
`# serving`, stop it afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServedSandbox:
    """What `sandbox serve` printed before it started serving."""

    exports: dict[str, str]
    """The environment it exports: each vendor's base URL and sandbox credentials."""
    lines: list[str] = field(default_factory=list)
    """Every line up to `# serving` (each simulator's admin URL is among them)."""


def read_exports(lines: Iterable[str]) -> ServedSandbox:
    """The `export NAME=value` lines `sandbox serve` prints, read up to `# serving`."""
    served = ServedSandbox(exports={})
    for line in lines:
        served.lines.append(line)
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").strip().partition("=")
            served.exports[name] = value.strip("'")
        if line.startswith("# serving"):
            break
    return served


class SandboxDidNotStart(RuntimeError):
    """`sandbox serve` ended before `# serving`; the message holds what it printed."""


@contextmanager
def served_sandbox(desired: str | Path, cwd: Path, *options: str) -> Iterator[ServedSandbox]:
    """`reconciler sandbox serve DESIRED OPTIONS...` from `cwd`, stopped on exit.

    Its stderr goes to a file and its stdout is drained once it serves: a pipe nobody
    reads blocks the server as soon as 64 KB wait in it. When it stops before serving,
    `SandboxDidNotStart` carries its own error (a YAML problem, a port in use) instead
    of a test failing later on a missing export.
    """
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as errors:
        server = subprocess.Popen(
            [sys.executable, "-m", "reconciler.cli", "sandbox", "serve", str(desired),
             *options],
            stdout=subprocess.PIPE, stderr=errors, text=True, cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert server.stdout is not None
            served = read_exports(server.stdout)
            if not served.lines or not served.lines[-1].startswith("# serving"):
                server.wait(timeout=20)
                errors.seek(0)
                printed = "".join(served.lines) + errors.read()
                raise SandboxDidNotStart(f"`sandbox serve {desired}` stopped before serving "
                                         f"(exit {server.returncode}):\n{printed[-4000:]}")
            threading.Thread(target=server.stdout.read, daemon=True).start()
            yield served
        finally:
            server.terminate()
            server.wait(timeout=20)
