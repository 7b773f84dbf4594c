"""The UiPath provider against its simulator: hierarchy order, set semantics, tokens."""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import pytest

from reconciler.errors import CapacityError, ConfigError, VendorError
from reconciler.model import DesiredState, OutcomeStatus, Plan
from reconciler.pipeline import load_desired
from reconciler.planner import build_plan
from reconciler.providers.uipath import UiPathConnection, UiPathProvider
from reconciler.sandbox.uipath import UiPathSimulator
from reconciler.secrets import Secrets
from tests.unit.factories import TODAY

ENV = {"U": "admin", "P": "sandbox-uipath-host-password", "C": "reconciler-app",
       "S": "sandbox-uipath-app-secret"}
CONNECTION = """\
providers:
  uipath:
    connection:
      host_username_env: U
      host_password_env: P
      client_id_env: C
      client_secret_env: S
      scope: {scope}
      host_license: {{UNATT: 20, NONPR: 4, TIE: 2, ATTUNU: 10, RPADEVPRONU: 10}}
      ids:
        acme: 6b0c7f55-0000-4000-8000-000000000001
        acme-prod: 0f1e2d3c-0000-4000-8000-00000000a001
        acme-dev: 0f1e2d3c-0000-4000-8000-00000000a002
        delilah: y-y-y-delilah
    subjects:
"""
# The seed state of the acme organization, as YAML: planning it changes nothing.
ACME = {
    "org": "{UNATT: 10, ATTUNU: 4, RPADEVPRONU: 5}",
    "prod": 6, "dev": 4,
    "group": "[RPADEVPRONU]",
    "alice": "[ATTUNU]", "bob": "[ATTUNU, RPADEVPRONU]", "carol": "[]",
}
SUBJECTS = """\
      - organization: acme
        licenses: {org_licenses}
      - tenant: acme-prod
        attrs: {{organization: acme}}
        licenses: [{{id: orchestrator/UNATT, quantity: {prod}}}]
      - tenant: acme-dev
        attrs: {{organization: acme}}
        licenses: [{{id: orchestrator/UNATT, quantity: {dev}}}]
      - group: automation-devs
        attrs: {{organization: acme}}
        licenses: {group}
      - user: alice@acme.example
        attrs: {{organization: acme}}
        licenses: {alice}
      - user: bob@acme.example
        attrs: {{organization: acme}}
        {bob_protected}licenses: {bob}
      - user: carol@acme.example
        attrs: {{organization: acme}}
        licenses: {carol}
"""


def org_licenses(quantities: str) -> str:
    pairs = [p.split(":") for p in quantities.strip("{}").split(",")]
    return "[" + ", ".join(f"{{id: {c.strip()}, quantity: {q.strip()}}}" for c, q in pairs) + "]"


def write_yaml(tmp_path: Path, subjects: str, scope: str = "PM.License") -> DesiredState:
    path = tmp_path / "uipath.yaml"
    path.write_text(CONNECTION.format(scope=scope) + subjects)
    return load_desired([str(path)])


def acme(tmp_path: Path, *, scope: str = "PM.License", bob_protected: bool = False,
         **changes: object) -> DesiredState:
    values = {**ACME, **changes}
    subjects = SUBJECTS.format(org_licenses=org_licenses(str(values["org"])),
                               bob_protected="protected: true\n        " if bob_protected else "",
                               **{k: v for k, v in values.items() if k != "org"})
    return write_yaml(tmp_path, subjects, scope)


@pytest.fixture
def simulator() -> UiPathSimulator:
    return UiPathSimulator()


@pytest.fixture
def connect(simulator, vendor_http):
    def make(desired: DesiredState) -> UiPathProvider:
        connection = UiPathConnection.model_validate(desired.providers["uipath"].connection)
        return UiPathProvider(connection, vendor_http(simulator), Secrets(environ=ENV))

    return make


async def plan_for(provider: UiPathProvider, state: DesiredState) -> Plan:
    current = await provider.read(state.providers["uipath"])
    return build_plan(state, {"uipath": current}, {"uipath": provider.actions},
                      {"uipath": provider.check}, today=TODAY)


async def execute_in_order(provider: UiPathProvider, plan: Plan) -> list[OutcomeStatus]:
    return [(await provider.execute(action)).status for action in plan.actions]


def puts(simulator: UiPathSimulator) -> list[dict]:
    return [e for e in simulator.request_log() if e["method"] == "PUT"]


async def test_the_seed_state_plans_nothing_and_reads_only(tmp_path, connect, simulator):
    plan = await plan_for(connect(acme(tmp_path)), acme(tmp_path))
    assert plan.actions == ()
    changing = [e["path"] for e in simulator.request_log() if e["method"] != "GET"]
    assert changing == ["/api/account/authenticate", "/identity_/connect/token"]
    paths = {e["path"] for e in simulator.request_log() if e["method"] == "GET"}
    assert "/lease_/api/account/6b0c7f55-0000-4000-8000-000000000001/user-license" \
        in paths, "the reference's user-license path: no organization name before it"


async def test_grow_and_shrink_in_one_plan_shrinks_bottom_up_then_grows_top_down(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, org="{UNATT: 10, ATTUNU: 3, RPADEVPRONU: 6}", prod=8, dev=2,
                   bob="[ATTUNU]", carol="[RPADEVPRONU]")
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    steps = [(a.subject.kind, a.subject.id, "shrink" if a.frees else "grow")
             for a in plan.actions]
    assert steps == [
        ("user", "bob@acme.example", "shrink"),
        ("tenant", "acme-dev", "shrink"),
        ("organization", "acme", "shrink"),
        ("organization", "acme", "grow"),
        ("tenant", "acme-prod", "grow"),
        ("user", "carol@acme.example", "grow"),
    ]
    assert [a.phase for a in plan.actions] == sorted(a.phase for a in plan.actions)
    assert len({a.phase for a in plan.actions}) == 6, "every level waits for the one before"
    shrink, grow = plan.actions[2], plan.actions[3]
    assert shrink.request.method == grow.request.method == "PUT"
    assert shrink.request.body == {"productQuantities": [
        {"code": "ATTUNU", "quantity": 3}, {"code": "RPADEVPRONU", "quantity": 5},
        {"code": "UNATT", "quantity": 10}]}, "every code, with its total at that moment"
    assert grow.request.body == {"productQuantities": [
        {"code": "ATTUNU", "quantity": 3}, {"code": "RPADEVPRONU", "quantity": 6},
        {"code": "UNATT", "quantity": 10}]}
    assert "uipath:organization:acme:grow" in plan.actions[4].depends_on
    assert "uipath:tenant:acme-dev:orchestrator:shrink" in plan.actions[4].depends_on
    assert puts(simulator) == [], "planning sends nothing that changes"

    assert await execute_in_order(provider, plan) == [OutcomeStatus.SUCCEEDED] * 6
    again = await plan_for(provider, desired)
    assert again.actions == ()


async def test_tenant_swap_at_full_organization_capacity_shrinks_the_donor_first(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, prod=8, dev=2)
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    assert [(a.subject.id, a.frees) for a in plan.actions] == [
        ("acme-dev", True), ("acme-prod", False)]
    assert plan.actions[0].phase < plan.actions[1].phase
    assert plan.actions[1].depends_on == ("uipath:tenant:acme-dev:orchestrator:shrink",)

    receiver_first = await provider.execute(plan.actions[1])
    assert receiver_first.status is OutcomeStatus.FAILED, "the organization is full"
    assert "HTTP 409" in receiver_first.message

    assert await execute_in_order(provider, plan) == [OutcomeStatus.SUCCEEDED] * 2
    tenants = simulator.state["organizations"]["6b0c7f55-0000-4000-8000-000000000001"]["tenants"]
    assert tenants["0f1e2d3c-0000-4000-8000-00000000a001"]["services"]["orchestrator"] == {
        "UNATT": 8}
    assert (await plan_for(provider, desired)).actions == ()


async def test_tenants_beyond_the_organization_are_refused_before_any_call(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, prod=8, dev=4)
    with pytest.raises(ConfigError) as caught:
        await plan_for(connect(desired), desired)
    message = str(caught.value)
    assert "uipath: UNATT: tenants, groups and users of organization 'acme' would hold 12 " \
           "but the organization has 10" in message
    assert "tenant acme-dev 4, tenant acme-prod 8" in message
    assert f"{tmp_path / 'uipath.yaml'}:" in message, "names the file and line"
    assert puts(simulator) == []


async def test_users_beyond_the_organizations_user_licenses_are_refused(tmp_path, connect):
    desired = acme(tmp_path, org="{UNATT: 10, ATTUNU: 2, RPADEVPRONU: 5}",
                   carol="[ATTUNU]")
    with pytest.raises(ConfigError) as caught:
        await plan_for(connect(desired), desired)
    assert "ATTUNU: tenants, groups and users of organization 'acme' would hold 3 but the " \
           "organization has 2" in str(caught.value)


async def test_a_protected_user_keeps_counting(tmp_path, connect):
    desired = acme(tmp_path, org="{UNATT: 10, ATTUNU: 1, RPADEVPRONU: 5}",
                   bob="[]", bob_protected=True)
    with pytest.raises(ConfigError) as caught:
        await plan_for(connect(desired), desired)
    assert "ATTUNU" in str(caught.value) and "user bob@acme.example 1" in str(caught.value)


async def test_an_organization_beyond_the_host_license_is_refused(tmp_path, connect, simulator):
    desired = acme(tmp_path, org="{UNATT: 21, ATTUNU: 4, RPADEVPRONU: 5}")
    with pytest.raises(CapacityError) as caught:
        await plan_for(connect(desired), desired)
    assert "pool 'host/UNATT' would hold 21 quantity but has 20" in str(caught.value)
    assert puts(simulator) == []


async def test_quantities_only_where_the_api_takes_them(tmp_path, connect):
    desired = write_yaml(tmp_path, """\
      - organization: acme
        licenses: [UNATT]
      - user: alice@acme.example
        attrs: {organization: acme}
        licenses: [{id: ATTUNU, quantity: 2}]
""")
    with pytest.raises(ConfigError) as caught:
        await plan_for(connect(desired), desired)
    assert "'UNATT' needs a quantity of at least 1" in str(caught.value)
    assert "'ATTUNU' is a user bundle code" in str(caught.value)


async def test_the_guides_tenant_example_is_the_documented_put(tmp_path, connect, simulator):
    """UNATT 5, NONPR 4, TIE 2 on tenant y1968 of account y-y-y-delilah."""
    desired = write_yaml(tmp_path, """\
      - organization: delilah
        licenses: [{id: UNATT, quantity: 5}, {id: NONPR, quantity: 4}, {id: TIE, quantity: 2}]
      - tenant: y1968
        attrs: {organization: delilah}
        licenses:
          - {id: orchestrator/UNATT, quantity: 5}
          - {id: orchestrator/NONPR, quantity: 4}
          - {id: orchestrator/TIE, quantity: 2}
""")
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    [action] = plan.actions
    assert action.verb == "allocate" and action.repeatable
    assert action.call.path == ("lrm", "api", "account", "y-y-y-delilah", "service-license",
                                "y1968", "orchestrator")
    assert action.request.method == "PUT"
    assert action.request.url == ("http://uipath.sandbox/lrm/api/account/y-y-y-delilah/"
                                  "service-license/y1968/orchestrator")
    assert action.request.body["tenantName"] == "y1968"
    assert sorted(action.request.body["products"], key=lambda p: p["code"]) == [
        {"code": "NONPR", "quantity": 4}, {"code": "TIE", "quantity": 2},
        {"code": "UNATT", "quantity": 5}]
    assert "productQuantities" not in action.request.body
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    assert (await plan_for(provider, desired)).actions == ()


async def test_expired_tokens_are_fetched_again_once(tmp_path, connect, simulator):
    """Before each phase every token expires; the calls of a phase run concurrently, all
    meet a 401, and one new token serves them all."""
    desired = acme(tmp_path, alice="[ATTUNU, RPADEVPRONU]", carol="[RPADEVPRONU]",
                   group="[]", prod=8, dev=2)
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    by_phase: dict[int, list] = {}
    for action in plan.actions:
        by_phase.setdefault(action.phase, []).append(action)
    assert [len(batch) for batch in by_phase.values()] == [1, 1, 1, 2]
    for batch in by_phase.values():
        await provider.http.client.post("/_sandbox/expire-tokens")
        outcomes = await asyncio.gather(*(provider.execute(a) for a in batch))
        assert all(o.status is OutcomeStatus.SUCCEEDED for o in outcomes), outcomes
    log = simulator.request_log()
    unauthorized = [e for e in log if e["status"] == 401]
    assert len(unauthorized) == 5, "each call of each phase met the expired token once"
    # One login for the read, then one per phase that uses that kind of token.
    assert [e["path"] for e in log].count("/api/account/authenticate") == 1 + 2
    assert [e["path"] for e in log].count("/identity_/connect/token") == 1 + 2


async def test_a_409_from_the_vendor_is_a_clear_failed_outcome(tmp_path, connect, simulator):
    desired = acme(tmp_path, org="{UNATT: 14, ATTUNU: 4, RPADEVPRONU: 5}", prod=10)
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    simulator.state["host"]["UNATT"] = 12  # someone else took host licenses meanwhile
    outcome = await provider.execute(plan.actions[0])
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.message.startswith("UiPath refused the allocation (PUT /lrm/api/host/")
    assert "HTTP 409" in outcome.message and "exceeds the host license quantity 12" in \
        outcome.message


async def test_a_token_without_the_write_permission_fails_clearly(tmp_path, connect):
    desired = acme(tmp_path, carol="[RPADEVPRONU]", scope="PM.License.Read")
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    [action] = plan.actions
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED
    assert "HTTP 403" in outcome.message and "PM.License.Write" in outcome.message


async def test_a_service_named_in_attrs_is_read_and_emptied(tmp_path, connect, simulator):
    dev = simulator.state["organizations"]["6b0c7f55-0000-4000-8000-000000000001"]["tenants"][
        "0f1e2d3c-0000-4000-8000-00000000a002"]
    dev["services"] = {"orchestrator": {"UNATT": 3}, "testmanager": {"UNATT": 1}}
    desired = write_yaml(tmp_path, """\
      - tenant: acme-dev
        attrs: {organization: acme, services: [orchestrator, testmanager]}
        licenses: [{id: orchestrator/UNATT, quantity: 4}]
""")
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    assert [(a.id, a.request.body["products"]) for a in plan.actions] == [
        ("uipath:tenant:acme-dev:testmanager:shrink", [{"code": "UNATT", "quantity": 0}]),
        ("uipath:tenant:acme-dev:orchestrator:grow", [{"code": "UNATT", "quantity": 4}]),
    ]
    assert await execute_in_order(provider, plan) == [OutcomeStatus.SUCCEEDED] * 2
    assert dev["services"] == {"orchestrator": {"UNATT": 4}, "testmanager": {}}


async def test_users_are_named_in_the_yaml_and_sent_by_id(tmp_path, connect, simulator):
    path = tmp_path / "named.yaml"
    path.write_text(CONNECTION.format(scope="PM.License").replace(
        "        delilah: y-y-y-delilah\n",
        "        delilah: y-y-y-delilah\n        carol: carol@acme.example\n") + """\
      - user: carol
        attrs: {organization: acme}
        licenses: [RPADEVPRONU]
""")
    desired = load_desired([str(path)])
    provider = connect(desired)
    [action] = (await plan_for(provider, desired)).actions
    assert action.subject.id == "carol"
    assert action.request.body == {"userIds": ["carol@acme.example"],
                                   "userBundleCodes": ["RPADEVPRONU"],
                                   "useExternalLicense": False}
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    assert (await plan_for(provider, desired)).actions == ()


async def test_every_action_is_repeatable_and_sending_it_twice_ends_in_the_same_place(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, org="{UNATT: 10, ATTUNU: 3, RPADEVPRONU: 6}", prod=8, dev=2,
                   bob="[ATTUNU]", carol="[RPADEVPRONU]")
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    assert plan.actions and all(a.repeatable for a in plan.actions)
    for action in plan.actions:
        assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
        once = copy.deepcopy(simulator.state)
        assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
        assert simulator.state == once, f"{action.id} sent twice changed nothing more"
    assert (await plan_for(provider, desired)).actions == ()


async def test_confirm_answers_from_a_fresh_read_before_and_after_the_call(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, org="{UNATT: 10, ATTUNU: 3, RPADEVPRONU: 6}", prod=8, dev=2,
                   bob="[ATTUNU]", carol="[RPADEVPRONU]", group="[RPADEVPRONU, ATTUNU]")
    provider = connect(desired)
    plan = await plan_for(provider, desired)
    kinds = {a.subject.kind for a in plan.actions}
    assert kinds == {"organization", "tenant", "group", "user"}
    for action in plan.actions:
        assert await provider.confirm(action) is False, f"{action.id} not sent yet"
        assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
        assert await provider.confirm(action) is True, f"{action.id} visible"
    reads = [e for e in simulator.request_log() if e["method"] == "GET"]
    assert all(e["status"] == 200 for e in reads)


async def test_confirm_says_false_when_someone_changed_the_subject_since(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, carol="[RPADEVPRONU]")
    provider = connect(desired)
    [action] = (await plan_for(provider, desired)).actions
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    simulator.state["organizations"]["6b0c7f55-0000-4000-8000-000000000001"]["users"][
        "carol@acme.example"] = []
    assert await provider.confirm(action) is False


async def test_confirm_sees_a_user_emptied_and_gone_from_the_list_as_done(
        tmp_path, connect, simulator):
    desired = acme(tmp_path, alice="[]")
    provider = connect(desired)
    [action] = (await plan_for(provider, desired)).actions
    assert action.call.body["userBundleCodes"] == []
    assert (await provider.execute(action)).status is OutcomeStatus.SUCCEEDED
    del simulator.state["organizations"]["6b0c7f55-0000-4000-8000-000000000001"]["users"][
        "alice@acme.example"]
    assert await provider.confirm(action) is True, "not listed: holds no code, as asked"


async def test_a_refusal_names_the_status_and_the_vendors_message(tmp_path, connect, simulator):
    desired = acme(tmp_path, carol="[RPADEVPRONU]")
    provider = connect(desired)
    [action] = (await plan_for(provider, desired)).actions
    del simulator.state["organizations"]["6b0c7f55-0000-4000-8000-000000000001"]["users"][
        "carol@acme.example"]
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED
    assert "HTTP 404 Not Found: User carol@acme.example not found" in outcome.message
    assert "None" not in outcome.message


async def test_a_group_rule_beyond_the_account_fails_with_the_documented_409(
        tmp_path, connect, simulator):
    """2022.10/2023.4 document 409 for a group allocation that exceeds the account's
    quantities: the action fails naming it, and nothing else is assumed to have happened."""
    desired = acme(tmp_path, group="[ATTUNU, RPADEVPRONU]")
    provider = connect(desired)
    [action] = (await plan_for(provider, desired)).actions
    org = simulator.state["organizations"]["6b0c7f55-0000-4000-8000-000000000001"]
    org["products"]["ATTUNU"] = 2  # alice and bob now hold every unit
    outcome = await provider.execute(action)
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.message.startswith("UiPath refused the allocation (PUT /lease_/api/account/")
    assert "HTTP 409 Conflict: The license allocation is not allowed because it exceeds the " \
           "account license quantities" in outcome.message
    assert org["groups"]["automation-devs"]["bundles"] == ["RPADEVPRONU"]
    assert await provider.confirm(action) is False


async def test_a_refused_host_login_is_a_clear_auth_error_without_the_password(
        tmp_path, simulator, vendor_http):
    desired = acme(tmp_path)
    connection = UiPathConnection.model_validate(desired.providers["uipath"].connection)
    provider = UiPathProvider(connection, vendor_http(simulator),
                              Secrets(environ={**ENV, "P": "not-the-password-77"}))
    with pytest.raises(VendorError) as caught:
        await provider.read(desired.providers["uipath"])
    assert caught.value.code == "auth"
    assert str(caught.value) == ("UiPath host admin (ROPC) authentication failed: HTTP 400 "
                                 "Bad Request: Invalid username/email address or password.")
    assert "not-the-password-77" not in str(caught.value)
