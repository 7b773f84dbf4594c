"""Simulators served from a separate process, so a benchmark measures only reconciler.

    python benchmarks/served.py PROVIDER SEED.json FAULTS.json

Prints the base URL on stdout, then serves until stdin closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


class SimulatorProcess:
    """Starts one simulator in a child process; `url` is where it listens."""

    def __init__(self, provider: str, seed: dict[str, Any], faults: dict[str, Any],
                 scratch: Path) -> None:
        seed_file = scratch / f"{provider}-seed.json"
        faults_file = scratch / f"{provider}-faults.json"
        seed_file.write_text(json.dumps(seed))
        faults_file.write_text(json.dumps(faults))
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), provider, str(seed_file), str(faults_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.root = "/".join(self.url.split("/", 3)[:3])
        """Scheme and host of `url`: where `/_sandbox/` lives."""

    def requests(self) -> list[dict[str, Any]]:
        import httpx

        log: list[dict[str, Any]] = httpx.get(f"{self.root}/_sandbox/requests",
                                              timeout=60).json()
        return log

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from reconciler.sandbox.base import Faults
    from reconciler.sandbox.registry import simulators
    from reconciler.sandbox.serve import ServedSimulators

    provider, seed_file, faults_file = sys.argv[1:4]
    simulator = simulators()[provider](seed=json.loads(Path(seed_file).read_text()))
    simulator.set_faults(Faults.model_validate_json(Path(faults_file).read_text()))
    with ServedSimulators({provider: simulator}) as served:
        print(served.urls[provider], flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
