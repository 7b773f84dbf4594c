"""LicenseSpring: key-based licenses of 50 activations each, devices activated on them.

Reads are two paged Management API lists (licenses, every device: there is no documented
filter for active ones), 100 a page.
"""

from __future__ import annotations

import random

from benchmarks.scenarios import ListScope, Scenario

PROVIDER = "licensespring"
PAGE = 100
PER_LICENSE = 50


def build(grants: int, rng: random.Random, difference: float = 0.1) -> Scenario:
    changed = max(1, int(grants * difference / 2))
    count = max(1, grants // PER_LICENSE)
    keys = [f"KEY-{i:06}" for i in range(count)]
    devices = [f"hw-{i:07}" for i in range(grants + changed)]
    licenses = [{"id": i + 1, "product": "bench", "license_key": key,
                 "max_activations": PER_LICENSE + changed + 1, "enabled": True, "devices": []}
                for i, key in enumerate(keys)]
    wanted: dict[str, list[str]] = {}
    for index, hardware_id in enumerate(devices[:grants]):
        entry = licenses[index % count]
        entry["devices"].append({"id": index + 1, "hardware_id": hardware_id,
                                 "device_active": True})
        wanted[hardware_id] = [entry["license_key"]]
    for hardware_id in rng.sample(devices[:grants], changed):
        wanted[hardware_id] = []
    for index, hardware_id in enumerate(devices[grants:]):
        wanted[hardware_id] = [keys[index % count]]
    seed = {
        "max_clock_skew_s": 300,
        "api_keys": {"sandbox-licensespring-api-key": "sandbox-licensespring-shared-key"},
        "management_keys": ["sandbox-licensespring-management-key"],
        "products": {"bench": "Bench"},
        "licenses": licenses,
    }
    document = {"providers": {PROVIDER: {
        "connection": {"base_url_env": "LICENSESPRING_BASE_URL",
                       "management_url_env": "LICENSESPRING_MANAGEMENT_URL",
                       "api_key_env": "LICENSESPRING_API_KEY",
                       "shared_key_env": "LICENSESPRING_SHARED_KEY",
                       "management_key_env": "LICENSESPRING_MANAGEMENT_KEY"},
        "limits": {"max_removals": grants, "rate_limit": 5000, "concurrency": 16},
        "subjects": [{"device": d, "licenses": keys_} for d, keys_ in sorted(wanted.items())],
    }}}
    scopes = [ListScope("licenses", count, PAGE), ListScope("devices", grants, PAGE)]
    # Offset pages: each list's first page tells its total, the rest go at once.
    chain = max(min(2, scope.minimal_requests) for scope in scopes)
    return Scenario(PROVIDER, seed, document, scopes, grants, chain=chain)


def replay_step(method: str, path: str, query: str) -> tuple[int, str]:
    first = "offset=0&" in f"{query}&"
    return (0 if first else 1), f"{path}?{query}"
