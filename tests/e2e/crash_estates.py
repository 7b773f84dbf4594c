"""Estates of the built-in vendors for the kit's crash property (`reconciler.testing.crash`):
per provider, a seed, a desired state ~300 changes away, and what the vendor holds, read
straight from the simulator's state.

Four providers reuse the benchmark scenarios (`benchmarks/scenarios/`) with every
grant in play: half the holders lose their license, as many newcomers gain one, the
other half keep theirs. ADManager batches identical changes into one workflow
request, so its estate gives each change its own SKU: one request per change.

`holdings` reads the simulator's state, never reconciler's provider: what the test
calls "the vendor differs from the YAML" must not depend on the code under test.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.scenarios import builders
from reconciler.testing.crash import CRASH_LIMITS, Estate, Holding

HOLDINGS_SPEC = "tests.e2e.crash_estates:HOLDINGS"

GRANTS = 300
"""Grants in play per provider; with `difference=1.0`, 150 removals and 150 additions."""


def estate(provider: str, rng: random.Random) -> Estate:
    if provider == "admanager":
        return admanager_estate()
    build = builders().get(provider)
    assert build is not None and provider in HOLDINGS, (
        f"{provider} has no crash estate: add a benchmarks/scenarios module and its "
        "holdings reader here")
    scenario = build(GRANTS, rng, 1.0)
    found = Estate(provider, scenario.seed, scenario.document, HOLDINGS_SPEC)
    found.block["limits"] = {**(found.block.get("limits") or {}), **CRASH_LIMITS}
    return found


# ---- ADManager: one SKU per pair of changes, so every change is its own request ----------
DOMAIN = "crash.local"
SKUS = GRANTS // 2


def admanager_estate() -> Estate:
    """Per SKU k: `keep-k` holds it and keeps it, `lose-k` gives it back, `gain-k` gets it.

    Requests are approved the moment another call reaches the server
    (`auto_approve_after_s: 0`), in the order they were filed.
    """
    skus = {f"SKU{k:03}": {"name": f"SKU {k}", "total": 2, "plans": [f"PLAN{k:03}"]}
            for k in range(SKUS)}
    users: list[dict[str, Any]] = []
    subjects: list[dict[str, Any]] = []
    for k, sku in enumerate(skus):
        for role, before, after in (("keep", True, True), ("lose", True, False),
                                    ("gain", False, True)):
            name = f"{role}-{k:03}"
            users.append({"displayName": name, "sAMAccountName": name,
                          "userPrincipalName": f"{name}@{DOMAIN}",
                          "licences": {sku: {"disabled": []}} if before else {}})
            subjects.append({"user": name, "attrs": {"domain": DOMAIN},
                             "licenses": [sku] if after else []})
    seed = {"auth_tokens": ["sandbox-admanager-authtoken"], "licence_column": "O365_LICENSES",
            "max_range": 100, "auto_approve_after_s": 0,
            "domains": {DOMAIN: {"skus": skus, "users": users}}}
    document = {"providers": {"admanager": {
        "connection": {"base_url_env": "ADMANAGER_BASE_URL",
                       "auth_token_env": "ADMANAGER_AUTHTOKEN",
                       "capacity": {sku: 2 for sku in skus},
                       "skus": {sku: {"name": v["name"], "plans": v["plans"]}
                                for sku, v in skus.items()}},
        "limits": dict(CRASH_LIMITS),
        "subjects": subjects,
    }}}
    return Estate("admanager", seed, document, HOLDINGS_SPEC)


# ---- vendor truth, from each simulator's own state --------------------------------------
def _yext(state: dict[str, Any]) -> Iterable[Holding]:
    for account in state["accounts"].values():
        for pack, holders in account["assignments"].items():
            yield from ((entity, pack, None) for entity in holders)


def _uipath(state: dict[str, Any]) -> Iterable[Holding]:
    for org in state["organizations"].values():
        yield from ((org["name"], code, n) for code, n in org["products"].items() if n)
        for tenant in org["tenants"].values():
            for service, codes in tenant["services"].items():
                yield from ((tenant["name"], f"{service}/{code}", n)
                            for code, n in codes.items() if n)
        for user, bundles in org["users"].items():
            yield from ((user, code, None) for code in bundles)


def _licensespring(state: dict[str, Any]) -> Iterable[Holding]:
    for entry in state["licenses"]:
        yield from ((d["hardware_id"], entry["license_key"], None)
                    for d in entry["devices"] if d["device_active"])


def _commvault(state: dict[str, Any]) -> Iterable[Holding]:
    for client in state["clients"].values():
        yield from ((client["name"], name, None) for name in client["consumed"])


def _admanager(state: dict[str, Any]) -> Iterable[Holding]:
    for domain in state["domains"].values():
        for user in domain["users"]:
            yield from ((user["sAMAccountName"], sku, None) for sku in user["licences"])


HOLDINGS: dict[str, Callable[[dict[str, Any]], Iterable[Holding]]] = {
    "yext": _yext, "uipath": _uipath, "licensespring": _licensespring,
    "commvault": _commvault, "admanager": _admanager,
}
