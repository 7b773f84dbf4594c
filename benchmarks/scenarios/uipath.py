"""UiPath: organizations with ten tenants each and many named users holding a bundle code.

Reads: per organization its allocation and its user list, per (tenant, service) its
allocation. There is no paging in these calls, so each is one request.
"""

from __future__ import annotations

import random

from benchmarks.scenarios import ListScope, Scenario

PROVIDER = "uipath"
PER_ORG = 1000
TENANTS = 10


def build(grants: int, rng: random.Random, difference: float = 0.1) -> Scenario:
    org_count = max(1, grants // PER_ORG)
    per_org = max(1, grants // org_count)
    changed = max(1, int(per_org * difference / 2))  # per organization
    organizations, subjects, ids, scopes = [], [], {}, []
    for o in range(org_count):
        org = f"org-{o:04}"
        ids[org] = f"00000000-0000-4000-8000-{o:012}"
        users = [f"u{o:04}-{i:06}@bench.example" for i in range(per_org + changed)]
        seats = per_org + changed + 10
        tenants = [f"{org}-t{t:02}" for t in range(TENANTS)]
        organizations.append({
            "id": ids[org], "name": org, "products": {"UNATT": TENANTS * 10, "ATTUNU": seats},
            "tenants": [{"id": t, "name": t, "services": {"orchestrator": {"UNATT": 10}}}
                        for t in tenants],
            "groups": [],
            "users": [{"id": u, "bundles": ["ATTUNU"] if i < per_org else []}
                      for i, u in enumerate(users)],
        })
        losing = set(rng.sample(users[:per_org], changed))
        subjects.append({"organization": org, "licenses": [
            {"id": "UNATT", "quantity": TENANTS * 10}, {"id": "ATTUNU", "quantity": seats}]})
        subjects += [{"tenant": t, "attrs": {"organization": org},
                      "licenses": [{"id": "orchestrator/UNATT", "quantity": 10}]}
                     for t in tenants]
        subjects += [{"user": u, "attrs": {"organization": org},
                      "licenses": [] if u in losing else ["ATTUNU"]} for u in users]
        scopes += [ListScope(f"organization/{org}", 1, 1), ListScope(f"users/{org}", 1, 1)]
        scopes += [ListScope(f"tenant/{t}", 1, 1) for t in tenants]
    seed = {
        "host_account_id": "feb0dd79-85b6-483b-b297-0e49a1aa5b7d",
        "host_admins": {"admin": "sandbox-uipath-host-password"},
        "external_apps": {"reconciler-app": {"secret": "sandbox-uipath-app-secret",
                                             "scopes": ["PM.License", "PM.UserLicense"]}},
        "token_ttl_s": 3600,
        "host_license": {"UNATT": org_count * TENANTS * 10,
                         "ATTUNU": org_count * (per_org + changed + 10)},
        "organizations": organizations,
    }
    document = {"providers": {PROVIDER: {
        "connection": {"base_url_env": "UIPATH_BASE_URL",
                       "host_username_env": "UIPATH_HOST_USERNAME",
                       "host_password_env": "UIPATH_HOST_PASSWORD",
                       "client_id_env": "UIPATH_CLIENT_ID",
                       "client_secret_env": "UIPATH_CLIENT_SECRET", "ids": ids},
        "limits": {"max_removals": grants, "rate_limit": 5000, "concurrency": 16},
        "subjects": subjects,
    }}}
    scopes += [ListScope("tokens", 2, 1)]
    # Two tokens (host admin, external app) first; then every read at once.
    return Scenario(PROVIDER, seed, document, scopes, grants, chain=2)


def replay_step(method: str, path: str, query: str) -> tuple[int, str]:
    return (0 if method == "POST" else 1), f"{method} {path}?{query}"
