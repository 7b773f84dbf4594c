"""`reconciler import` beyond the round trip: awkward ids, empty results, connections."""

from __future__ import annotations

import datetime as dt

import yaml

from reconciler.importer import conventional_connection, to_document
from reconciler.model import CurrentState, Grant, PoolState, Subject
from reconciler.pipeline import load_desired
from reconciler.providers import registry


def test_ids_yaml_would_misread_come_back_as_the_same_grants(workspace):
    awkward = ["yes", "null", "1e3", "0755", "~", "- dash", "a: b", "#hash", "2027-01-31",
               "trailing ", "ünïcode", "'quote\"", "on"]
    grants = tuple(
        Grant(provider="yext", pool=pack, license=pack, subject=Subject(kind="entity", id=sid),
              expires=dt.date(2027, 6, 30) if i % 2 else None)
        for i, sid in enumerate(awkward) for pack in ("knowledge-pro", "listings-basic"))
    current = CurrentState(provider="yext", grants=grants, pools=(
        PoolState(provider="yext", id="knowledge-pro", capacity=99, used=len(awkward)),))
    text = to_document("yext", {"api_key_env": "YEXT_API_KEY"}, current)
    (workspace / "imported.yaml").write_text(text)
    loaded = load_desired(["imported.yaml"]).providers["yext"]
    assert sorted(map(_key, loaded.grants)) == sorted(map(_key, grants))


def _key(grant: Grant) -> tuple[str, str, str, dt.date | None]:
    return (grant.pool, grant.subject.id, grant.license, grant.expires)


def test_a_scoped_provider_without_from_says_why_nothing_came_back(workspace, cli):
    result = cli("import", "admanager", "--sandbox")
    assert result.exit_code == 0
    assert yaml.safe_load(result.stdout)["providers"]["admanager"]["subjects"] == []
    assert "no live licenses found for 'admanager'" in result.stderr
    assert "--from FILE" in result.stderr


def test_an_unknown_pool_is_reported(workspace, cli):
    result = cli("import", "yext", "--sandbox", "--pool", "knowledge-prro")
    assert result.exit_code == 0
    assert "'yext' has no pool 'knowledge-prro' (pools read: knowledge-pro," in result.stderr


def test_optional_credentials_are_named_only_when_their_variable_is_set():
    fields = registry()["commvault"].connection_model.model_fields
    with_token = conventional_connection("commvault", fields, {"COMMVAULT_TOKEN": "t"})
    assert with_token["token_env"] == "COMMVAULT_TOKEN"
    assert "username_env" not in with_token and "password_env" not in with_token
    everything = conventional_connection("commvault", fields, None)  # the sandbox
    assert {"token_env", "username_env", "password_env"} <= set(everything)
    required = conventional_connection("yext", registry()["yext"].connection_model.model_fields,
                                       {})
    assert required["api_key_env"] == "YEXT_API_KEY", "a required setting is always named"
