"""Pure checks behind sealed plans: digests, differences, URL building, escaping."""

from __future__ import annotations

import httpx
import pytest

from reconciler.http import to_request, url_path
from reconciler.model import (
    Action,
    Call,
    Change,
    ChangeKind,
    Grant,
    Plan,
    RequestPreview,
    Subject,
    Summary,
)
from reconciler.render.json import read_plan, render_json
from reconciler.render.text import escape_controls, render_text
from reconciler.sealing import plan_differences, plan_digest, unknown_providers


def _action(entity: str = "store-1", *, body: object = None, method: str = "POST") -> Action:
    grant = Grant(provider="yext", pool="pack", subject=Subject(kind="entity", id=entity),
                  license="pack")
    call = Call.to(method, "v2", "packs", "pack", "assigned", entity, body=body)  # type: ignore[arg-type]
    return Action(
        id=f"yext:pack:entity:{entity}:assign", verb="assign", provider="yext", pool="pack",
        subject=grant.subject, license="pack", phase=300, reason="declared",
        request=RequestPreview(method=method, url=f"http://h/{entity}", body=body),
        changes=(Change(kind=ChangeKind.ADD, after=grant, reason="declared"),), call=call,
    )


def _plan(*actions: Action, digest: str = "c1") -> Plan:
    return Plan(config_digest=digest, summary=Summary(counts={}), actions=actions)


def test_equal_plans_have_no_differences_and_one_digest():
    assert plan_differences(_plan(_action()), _plan(_action())) == []
    assert plan_digest(_plan(_action())) == plan_digest(_plan(_action()))
    assert plan_digest(_plan(_action())) != plan_digest(_plan(_action("store-2")))


@pytest.mark.parametrize(
    ("saved", "why"),
    [
        (_plan(_action(body={"x": 1})), "call"),
        (_plan(_action(method="DELETE")), "call"),
        (_plan(_action(), _action("store-2")), "not needed now"),
        (_plan(), "needed now, not in the plan file"),
        (_plan(_action(), digest="other"), "desired state (YAML) changed"),
    ],
)
def test_any_edit_is_a_difference(saved, why):
    differences = plan_differences(saved, _plan(_action()))
    assert differences and any(why in d for d in differences), differences


def test_a_changed_preview_alone_is_a_difference():
    edited = _action().model_copy(update={"request": RequestPreview(method="POST",
                                                                    url="http://evil/")})
    assert any("request" in d for d in plan_differences(_plan(edited), _plan(_action())))


def test_providers_the_yaml_does_not_configure_are_named():
    foreign = _action().model_copy(update={"provider": "evil"})
    assert unknown_providers(_plan(foreign), ["yext"]) == ["evil"]


def test_newer_format_version_is_refused_with_a_clear_message():
    text = render_json(_plan(_action())).replace('"format_version": 1', '"format_version": 99')
    with pytest.raises(ValueError, match="unsupported plan format_version 99"):
        read_plan(text)


@pytest.mark.parametrize(
    ("segment", "encoded"),
    [
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("x?y=1", "x%3Fy%3D1"),
        ("s#f", "s%23f"),
        ("s%2D6", "s%252D6"),
        ("sp ace", "sp%20ace"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("a;jsessionid=x", "a%3Bjsessionid%3Dx"),
        ("$batch", "$batch"),
    ],
)
def test_each_id_stays_one_percent_encoded_segment(segment, encoded):
    call = Call.to("GET", "v2", segment, "z")
    assert url_path(call) == f"/v2/{encoded}/z"
    client = httpx.AsyncClient(base_url="http://vendor.example/api")
    request = to_request(client, call, query={"api_key": "k"})
    assert request.url.host == "vendor.example"
    assert request.url.raw_path.decode().startswith(f"/api/v2/{encoded}/z?")
    assert request.url.params["api_key"] == "k"


def test_text_output_escapes_control_characters_in_ids():
    text = render_text(_plan(_action("store\n::error::forged\u202e")))
    assert "\n::error::" not in text
    assert "store\\x0a::error::forged\\u202e" in text
    assert escape_controls("plain é") == "plain é"


def _edited(plan: Plan, **update: object) -> Plan:
    return plan.model_copy(update=update)


_BASE = _plan(_action(), _action("store-2"))
_IGNORED = {
    "notes": _edited(_BASE, notes=("an edited note",)),
    "fingerprints": _edited(_BASE, fingerprints={"yext": {"pack": "forged"}}),
    "summary": _edited(_BASE, summary=Summary(counts={"assign": 99})),
    "config_paths": _edited(_BASE, config_paths=("elsewhere.yaml",)),
    "action reason": _edited(_BASE, actions=(
        _BASE.actions[0].model_copy(update={"reason": "edited"}), _BASE.actions[1])),
}
_COMPARED = {
    "body": _plan(_action(body={"x": 1}), _action("store-2")),
    "method": _plan(_action(method="DELETE"), _action("store-2")),
    "order": _plan(_action("store-2"), _action()),
    "one action fewer": _plan(_action()),
    "yaml": _edited(_BASE, config_digest="other"),
}


@pytest.mark.parametrize("name", sorted(_IGNORED))
def test_applies_once_digest_ignores_what_the_comparison_ignores(name):
    edited = _IGNORED[name]
    assert plan_differences(edited, _BASE) == []
    assert plan_digest(edited) == plan_digest(_BASE), f"an edited {name} made the plan new"


@pytest.mark.parametrize("name", sorted(_COMPARED))
def test_applies_once_digest_covers_what_the_comparison_compares(name):
    edited = _COMPARED[name]
    assert plan_differences(edited, _BASE) != []
    assert plan_digest(edited) != plan_digest(_BASE)


@pytest.mark.parametrize("update", [{"sandbox": True}, {"targets": ("yext/pack",)}])
def test_applies_once_digest_covers_sandbox_and_targets(update):
    """Checked by `Session.rebuild` before the comparison, so sealed as well."""
    assert plan_digest(_edited(_BASE, **update)) != plan_digest(_BASE)


def test_a_plan_file_nested_deeper_than_any_plan_is_refused_in_one_line():
    for text in ("[" * 100_000 + "]" * 100_000,
                 '{"format_version": 1, "x": ' + "[" * 5_000 + "]" * 5_000 + "}"):
        with pytest.raises(ValueError, match="nested"):
            read_plan(text)
