"""Commvault: clients each consuming a Server File System license of one CommCell.

Commvault has no bulk license listing: one `GET /Client`, then each client's
licenses, and the agents of the named clients missing a declared license (only
those can get a re-apply). That is the minimum.
"""

from __future__ import annotations

import random

from benchmarks.scenarios import ListScope, Scenario

PROVIDER = "commvault"
LICENSE = "Server File System"


def build(grants: int, rng: random.Random, difference: float = 0.1) -> Scenario:
    changed = max(1, int(grants * difference / 2))
    names = [f"host-{i:07}" for i in range(grants + changed)]
    losing = set(rng.sample(names[:grants], changed))
    clients = [
        {"id": index + 2, "name": name, "agents": ["File System"],
         "consumed": [LICENSE] if index < grants else []}
        for index, name in enumerate(names)
    ]
    capacity = grants + changed + 10
    seed = {
        "users": {"admin": "sandbox-commvault-password"},
        "api_tokens": ["sandbox-commvault-token"],
        "licenses": {LICENSE: {"platformType": 1, "licenseType": 10, "appType": 33,
                               "capacity": capacity}},
        "agents": {"File System": {"applicationId": 33, "licenses": [LICENSE]}},
        "clients": clients,
    }
    document = {"providers": {PROVIDER: {
        "connection": {"base_url_env": "COMMVAULT_BASE_URL", "username_env": "COMMVAULT_USERNAME",
                       "password_env": "COMMVAULT_PASSWORD", "capacity": {LICENSE: capacity}},
        "limits": {"max_removals": grants, "rate_limit": 5000, "concurrency": 16},
        "subjects": [{"client": name, "licenses": [] if name in losing else [LICENSE]}
                     for name in names],
    }}}
    scopes = [ListScope("login", 1, 1), ListScope("clients", len(names), len(names))]
    scopes += [ListScope(f"licenses/{n}", 1, 1) for n in names]
    # Agents matter only where a re-apply may be planned: a client missing a license.
    gaining = [c["name"] for c in clients if c["name"] not in losing and not c["consumed"]]
    scopes += [ListScope(f"agents/{n}", 1, 1) for n in gaining]
    # Login, the client list, a client's licenses, then (if it gains one) its agents.
    return Scenario(PROVIDER, seed, document, scopes, grants, chain=4 if gaining else 3)


def replay_step(method: str, path: str, query: str) -> tuple[int, str]:
    """Login; the client list; then per client its licenses, then its agents."""
    if method == "POST":
        return 0, path
    if path.endswith("/Client"):
        return 1, path
    if path.endswith("/Agent"):
        return 2, query.partition("clientId=")[2].partition("&")[0]
    return 2, path.rsplit("/", 2)[-2]
