"""Yext: entities holding seats of license packs, about 1,000 assignments per pack."""

from __future__ import annotations

import random

from benchmarks.scenarios import ListScope, Scenario

PROVIDER = "yext"
PAGE = 50
PER_PACK = 1000


def build(grants: int, rng: random.Random, difference: float = 0.1) -> Scenario:
    packs = max(1, grants // PER_PACK)
    entities = [f"loc-{i:07}" for i in range(grants + int(grants * difference) + 10)]
    live: dict[str, dict[str, None]] = {f"pack-{p:04}": {} for p in range(packs)}
    wanted: dict[str, list[str]] = {}
    for index, entity in enumerate(entities[:grants]):
        pack = f"pack-{index % packs:04}"
        live[pack][entity] = None
        wanted.setdefault(entity, []).append(pack)
    # `difference` split evenly: holders losing their seat, new entities gaining one.
    changed = max(1, int(grants * difference / 2))
    for entity in rng.sample(entities[:grants], changed):
        wanted[entity] = []
    for index, entity in enumerate(entities[grants : grants + changed]):
        wanted[entity] = [f"pack-{index % packs:04}"]
    seed = {
        "api_keys": ["sandbox-yext-api-key"],
        "max_page_size": PAGE,
        "accounts": {"me": {
            "packs": [
                {"id": p, "name": p, "total": len(h) + changed + 10} for p, h in live.items()
            ],
            "entities": entities,
            "assignments": live,
        }},
    }
    document = {"providers": {PROVIDER: {
        "connection": {"base_url_env": "YEXT_BASE_URL", "api_key_env": "YEXT_API_KEY"},
        "limits": {"max_removals": grants, "rate_limit": 5000, "concurrency": 16},
        "subjects": [{"entity": e, "licenses": packs_} for e, packs_ in sorted(wanted.items())],
    }}}
    scopes = [ListScope("license-packs", packs, PAGE)]
    scopes += [ListScope(f"assigned-entities/{p}", len(h), PAGE) for p, h in live.items()]
    # Page tokens chain each list: the pack list, then the longest pack's pages.
    chain = scopes[0].minimal_requests + max(s.minimal_requests for s in scopes[1:])
    return Scenario(PROVIDER, seed, document, scopes, grants, chain=chain)


def replay_step(method: str, path: str, query: str) -> tuple[int, str]:
    """Pages of one list follow each other (the token comes from the page before)."""
    return (0 if path.endswith("/license-packs") else 1), path
