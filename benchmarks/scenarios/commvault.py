"""Commvault: clients each consuming a Server File System license of one CommCell.

Commvault has no bulk license listing: one `GET /Client`, then each client's
licenses, and the agents of the clients the YAML names. That is the minimum.
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
    scopes += [ListScope(f"agents/{n}", 1, 1) for n in names]
    return Scenario(PROVIDER, seed, document, scopes, grants)
