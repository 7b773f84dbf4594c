"""What one read of a CommCell found, as typed facts, and the parsers that build them.

The parsers take the documented response bodies (GET Client, GET Client/{id}/License,
GET Agent) and nothing else, so the contract tests can feed them the vendor's own
examples. A shape they do not expect is a VendorError naming the call, never a
KeyError, because a misread listing could make clients look as if they held nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.errors import VendorError


@dataclass(frozen=True)
class LicenseType:
    """How the CommCell identifies one license name in a release request."""

    platform_type: int
    app_type: int
    license_type: int | None = None


@dataclass(frozen=True)
class Agent:
    """An installed agent (iDataAgent); its applicationId is the appType of its license."""

    name: str
    application_id: int


@dataclass(frozen=True)
class ClientFacts:
    """One client: its id, the licenses it consumes and, when it was read, its agents.

    `agents` is None for clients the YAML does not name, and for named clients that
    already hold every license declared for them: only a client missing a declared
    license can get a re-apply, so only those clients' agents are read.
    """

    id: int
    name: str
    licenses: tuple[str, ...]
    agents: tuple[Agent, ...] | None = None


@dataclass(frozen=True)
class CommvaultFacts:
    """The facts `check` and `actions` work from (kept in `CurrentState.facts`).

    `license_types` holds what any client's license read reported for a name: a
    release names the license by these numbers.
    """

    clients: Mapping[str, ClientFacts]
    license_types: Mapping[str, LicenseType]


def _fail(call: str, what: str) -> VendorError:
    return VendorError(f"Commvault {call}: unexpected response shape ({what})")


def parse_clients(data: Mapping[str, Any]) -> list[tuple[int, str]]:
    """(clientId, clientName) of every row of `GET /Client`."""
    rows = data.get("clientProperties", [])
    if not isinstance(rows, list):
        raise _fail("GET Client", "clientProperties is not a list")
    found: list[tuple[int, str]] = []
    for row in rows:
        entity = row.get("client", {}).get("clientEntity") if isinstance(row, dict) else None
        if not isinstance(entity, dict) or "clientId" not in entity or "clientName" not in entity:
            raise _fail("GET Client", "a row without client.clientEntity.clientId/clientName")
        found.append((int(entity["clientId"]), str(entity["clientName"])))
    return found


def parse_licenses(data: Mapping[str, Any]) -> dict[str, LicenseType]:
    """License name → its numbers, from `GET /Client/{clientId}/License`."""
    infos = data.get("licensesInfo", [])
    if not isinstance(infos, list):
        raise _fail("GET Client/{id}/License", "licensesInfo is not a list")
    found: dict[str, LicenseType] = {}
    for info in infos:
        license_ = info.get("license") if isinstance(info, dict) else None
        if not isinstance(license_, dict) or not license_.get("licenseName"):
            raise _fail("GET Client/{id}/License", "an entry without license.licenseName")
        kind = license_.get("licenseType")
        found[str(license_["licenseName"])] = LicenseType(
            platform_type=int(info.get("platformType", 1)),
            app_type=int(license_.get("appType", 0)),
            license_type=int(kind) if kind is not None else None,
        )
    return found


def parse_agents(data: Mapping[str, Any]) -> tuple[Agent, ...]:
    """The agents of one client, from `GET /Agent?clientId=`."""
    rows = data.get("agentProperties", [])
    if not isinstance(rows, list):
        raise _fail("GET Agent", "agentProperties is not a list")
    agents = []
    for row in rows:
        entity = row.get("idaEntity") if isinstance(row, dict) else None
        if not isinstance(entity, dict) or "appName" not in entity:
            raise _fail("GET Agent", "a row without idaEntity.appName")
        agents.append(Agent(name=str(entity["appName"]),
                            application_id=int(entity.get("applicationId", 0))))
    return tuple(sorted(agents, key=lambda agent: agent.name))
