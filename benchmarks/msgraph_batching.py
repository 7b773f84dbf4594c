"""Microsoft 365 at 10k users: are requests near the minimum?

    python benchmarks/msgraph_batching.py                 # 10k users, 10 % of them change
    python benchmarks/msgraph_batching.py --users 2000 --changed 0.5

Needs the contributed package (`pip install -e contrib/reconciler-msgraph`). Seeds the
sandbox's Graph with N users, then runs `reconciler apply --sandbox` for a desired state
in which a fraction of them differ (half lose their licence, half gain one; every fourth
changed user also switches a second SKU, so one call carries an add and a remove).
The minimum, counted from the estate and not from the provider: one `assignLicense`
per changed user, `ceil(changed / 20)` `$batch` requests, `ceil(users / 999)` user
pages. Prints what was sent against that minimum, and the time taken.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reconciler.cli import main  # noqa: E402

E3, BI = "ENTERPRISEPACK", "POWER_BI_PRO"


def estate(users: int, changed: float) -> tuple[dict[str, Any], dict[str, Any], int]:
    """(seed, desired document, changed users)."""
    seed: dict[str, Any] = {
        "tenants": ["contoso.onmicrosoft.com"],
        "clients": {"sandbox-msgraph-client": "sandbox-msgraph-secret"},
        "max_page_size": 999,
        "skus": [{"skuPartNumber": E3, "enabled": users * 2,
                  "servicePlans": [{"servicePlanName": "EXCHANGE_S_ENTERPRISE"}]},
                 {"skuPartNumber": BI, "enabled": users * 2,
                  "servicePlans": [{"servicePlanName": "BI_AZURE_P2"}]}],
        "users": [], "groups": []}
    subjects = []
    moving = int(users * changed)
    for n in range(users):
        upn = f"user{n:05}@contoso.com"
        holds = {E3: {}} if n % 2 == 0 else {}
        wants = list(holds)
        if n < moving:
            wants = [] if holds else [E3]
            if n % 4 == 0:
                holds[BI] = {}   # ... and gives back Power BI in the same call
        seed["users"].append({"userPrincipalName": upn, "usageLocation": "US",
                              "licenses": holds})
        subjects.append({"user": upn, "licenses": wants})
    document = {"providers": {"msgraph": {
        "connection": {"tenant_env": "MSGRAPH_TENANT", "client_id_env": "MSGRAPH_CLIENT_ID",
                       "client_secret_env": "MSGRAPH_CLIENT_SECRET"},
        "limits": {"max_removals": users * 2, "rate_limit": 10_000},
        "subjects": subjects}}}
    return seed, document, moving


def run(users: int, changed: float) -> dict[str, Any]:
    from reconciler_msgraph.simulator import GraphSimulator

    seed, document, moving = estate(users, changed)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        sandbox = work / ".reconciler" / "sandbox"
        sandbox.mkdir(parents=True)
        (sandbox / "msgraph.json").write_text(json.dumps(GraphSimulator(seed=seed).state))
        (work / "msgraph.yaml").write_text(yaml.safe_dump(document))
        runner, here = CliRunner(), Path.cwd()
        os.chdir(work)   # the sandbox keeps its state under ./.reconciler
        try:
            started = time.perf_counter()
            applied = runner.invoke(main, ["apply", "msgraph.yaml", "--sandbox", "--auto-approve"])
            elapsed = time.perf_counter() - started
            log = [json.loads(line) for line in
                   (sandbox / "msgraph.requests.jsonl").read_text().splitlines()]
            drift = runner.invoke(main, ["drift", "msgraph.yaml", "--sandbox"])
        finally:
            os.chdir(here)
    batches = [e for e in log if e["path"] == "/v1.0/$batch"]
    items = sum(len(e["body"]["requests"]) for e in batches)
    direct = sum(1 for e in log if e["path"].endswith("/assignLicense"))
    user_pages = sum(1 for e in log if e["path"] == "/v1.0/users")
    return {
        "users": users, "changed_users": moving, "apply_exit": applied.exit_code,
        "drift_exit_after": drift.exit_code, "seconds": round(elapsed, 2),
        "assignLicense_sent": items + direct, "assignLicense_minimum": moving,
        "batch_requests": len(batches) + direct,
        "batch_minimum": math.ceil(moving / 20),
        "user_pages_read": user_pages,
        "user_pages_minimum": math.ceil(users / 999),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--changed", type=float, default=0.1)
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.users, arguments.changed), indent=2))


if __name__ == "__main__":
    cli()
