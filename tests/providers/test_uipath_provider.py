"""The UiPath provider against its simulator: hierarchy order, set semantics, tokens."""

from __future__ import annotations

import pytest

from reconciler.errors import CapacityError, ConfigError
from reconciler.model import OutcomeStatus
from reconciler.planner import build_plan
from reconciler.providers.uipath import UiPathConnection, UiPathProvider
from reconciler.sandbox.uipath import UiPathSimulator
from reconciler.secrets import Secrets
from tests.unit.factories import TODAY

ENV = {"U": "admin", "P": "sandbox-uipath-host-password", "C": "reconciler-app",
       "S": "sandbox-uipath-app-secret"}
IDS = {"acme": "6b0c7f55-0000-4000-8000-000000000001",
       "acme-prod": "0f1e2d3c-0000-4000-8000-00000000a001",
       "acme-dev": "0f1e2d3c-0000-4000-8000-00000000a002"}


@pytest.fixture
def simulator() -> UiPathSimulator:
    return UiPathSimulator()


@pytest.fixture
def provider(simulator, vendor_http) -> UiPathProvider:
    connection = UiPathConnection(host_username_env="U", host_password_env="P",
                                  client_id_env="C", client_secret_env="S", ids=IDS,
                                  host_license={"UNATT": 20, "ATTUNU": 10, "RPADEVPRONU": 10})
    return UiPathProvider(connection, vendor_http(simulator), Secrets(environ=ENV))


def desired_state(prod: int, dev: int, org_unatt: int = 10):
    from reconciler.model import (
        DesiredState,
        Grant,
        Location,
        ProviderDesired,
        Subject,
        SubjectDecl,
    )

    at = Location(file="uipath.yaml", line=1)
    org_attrs = {"organization": "acme"}
    org = Subject(kind="organization", id="acme")
    grants = (
        Grant(provider="uipath", pool="host/UNATT", license="UNATT", quantity=org_unatt,
              subject=org, source=at),
        Grant(provider="uipath", pool="host/ATTUNU", license="ATTUNU", quantity=4,
              subject=org, source=at),
        Grant(provider="uipath", pool="host/RPADEVPRONU", license="RPADEVPRONU", quantity=5,
              subject=org, source=at),
        Grant(provider="uipath", pool="acme/UNATT", license="orchestrator/UNATT", quantity=prod,
              subject=Subject(kind="tenant", id="acme-prod"), attrs=org_attrs, source=at),
        Grant(provider="uipath", pool="acme/UNATT", license="orchestrator/UNATT", quantity=dev,
              subject=Subject(kind="tenant", id="acme-dev"), attrs=org_attrs, source=at),
    )
    subjects = (SubjectDecl(subject=Subject(kind="organization", id="acme")),
                SubjectDecl(subject=Subject(kind="tenant", id="acme-prod"), attrs=org_attrs),
                SubjectDecl(subject=Subject(kind="tenant", id="acme-dev"), attrs=org_attrs))
    provider = ProviderDesired(provider="uipath", grants=grants, subjects=subjects)
    return DesiredState(providers={"uipath": provider})


async def plan_for(provider, state):
    current = await provider.read(state.providers["uipath"])
    return build_plan(state, {"uipath": current}, {"uipath": provider.actions},
                      {"uipath": provider.check}, today=TODAY)


async def test_swap_between_tenants_at_full_organization_capacity(provider, simulator):
    plan = await plan_for(provider, desired_state(prod=8, dev=2))
    assert [a.subject.id for a in plan.actions] == ["acme-dev", "acme-prod"], "donor first"
    assert plan.actions[0].frees and plan.actions[0].phase < plan.actions[1].phase
    for action in plan.actions:
        assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    tenants = simulator.state["organizations"][IDS["acme"]]["tenants"]
    assert tenants[IDS["acme-prod"]]["services"]["orchestrator"]["UNATT"] == 8
    again = await plan_for(provider, desired_state(prod=8, dev=2))
    assert again.actions == ()


async def test_growing_organization_and_tenant_goes_top_down(provider):
    plan = await plan_for(provider, desired_state(prod=10, dev=4, org_unatt=14))
    assert [(a.subject.kind, a.frees) for a in plan.actions] == [
        ("organization", False), ("tenant", False)]
    assert plan.actions[0].request.body == {"productQuantities": [
        {"code": "UNATT", "quantity": 14}]}


async def test_tenants_beyond_the_organization_are_refused_by_check(provider):
    with pytest.raises((ConfigError, CapacityError)) as caught:
        await plan_for(provider, desired_state(prod=8, dev=4))
    assert "would hold 12 but the organization has 10" in str(caught.value)


async def test_conflict_from_the_vendor_is_a_clear_failed_outcome(provider, simulator):
    plan = await plan_for(provider, desired_state(prod=10, dev=4, org_unatt=14))
    simulator.state["host"]["UNATT"] = 12
    outcome = await provider.execute(plan.actions[0])
    assert outcome.status is OutcomeStatus.FAILED
    assert "HTTP 409" in outcome.message and "exceed the host's 12" in outcome.message


async def test_expired_token_is_fetched_again_once(provider, simulator):
    plan = await plan_for(provider, desired_state(prod=8, dev=2))
    for token in simulator.state["tokens"].values():
        token["expires"] = 0
    assert (await provider.execute(plan.actions[0])).ok
    logins = [e for e in simulator.request_log() if e["path"] == "/api/account/authenticate"]
    assert len(logins) == 2
