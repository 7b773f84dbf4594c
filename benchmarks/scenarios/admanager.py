"""ADManager Plus: AD users holding Office 365 E3, read with SearchUser pages of 100."""

from __future__ import annotations

import random

from benchmarks.scenarios import ListScope, Scenario

PROVIDER = "admanager"
DOMAIN = "bench.local"
PAGE = 100
PLANS = ["KAIZALA_O365_P3", "TEAMS1", "EXCHANGE_S_ENTERPRISE", "SHAREPOINTENTERPRISE"]


def build(grants: int, rng: random.Random, difference: float = 0.1) -> Scenario:
    changed = max(1, int(grants * difference / 2))
    names = [f"user{i:07}" for i in range(grants + changed)]
    losing = set(rng.sample(names[:grants], changed))
    users = [
        {"displayName": name, "sAMAccountName": name, "userPrincipalName": f"{name}@{DOMAIN}",
         "licences": {"ENTERPRISEPACK": {"disabled": []}} if index < grants else {}}
        for index, name in enumerate(names)
    ]
    seats = grants + changed + 10
    seed = {
        "auth_tokens": ["sandbox-admanager-authtoken"],
        "licence_column": "O365_LICENSES",
        "max_range": PAGE,
        "domains": {DOMAIN: {
            "skus": {"ENTERPRISEPACK": {"name": "Office 365 Enterprise E3", "total": seats,
                                        "plans": PLANS}},
            "users": users,
        }},
    }
    document = {"providers": {PROVIDER: {
        "connection": {"base_url_env": "ADMANAGER_BASE_URL",
                       "auth_token_env": "ADMANAGER_AUTHTOKEN", "page_size": PAGE,
                       "capacity": {"ENTERPRISEPACK": seats}},
        "limits": {"max_removals": grants, "rate_limit": 5000, "concurrency": 16},
        "subjects": [{"user": name, "attrs": {"domain": DOMAIN},
                      "licenses": [] if name in losing else ["ENTERPRISEPACK"]}
                     for name in names],
    }}}
    scope = ListScope("SearchUser", len(names), PAGE)
    # Offset pages: the first tells the total, the rest can all go at once.
    return Scenario(PROVIDER, seed, document, [scope], grants,
                    chain=min(2, scope.minimal_requests))


def replay_step(method: str, path: str, query: str) -> tuple[int, str]:
    first = "startIndex=1&" in f"{query}&"
    return (0 if first else 1), f"{path}?{query}"
