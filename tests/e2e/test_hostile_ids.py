"""Ids are data, not URL fragments: a hostile id names at worst a subject that does not exist.

An id either loads and reaches exactly its own (percent-encoded) URL, or `validate`
refuses it with `file:line`. Never a traceback, never another subject's URL.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.e2e.conftest import changing, request_log

PACKS = "/v2/accounts/me/license-packs"


def _write(workspace: Path, entity: str) -> Path:
    target = workspace / "desired"
    target.mkdir(exist_ok=True)
    document = {
        "providers": {
            "yext": {
                "connection": {"api_key_env": "YEXT_API_KEY"},
                "limits": {"max_removals": 1000, "retries": 1, "backoff_initial": 0.001},
                "subjects": [{"entity": entity, "licenses": ["knowledge-pro"]}],
            }
        }
    }
    (target / "yext.yaml").write_text(yaml.safe_dump(document, allow_unicode=True))
    return target


REFUSED = {
    "slash": "../../reviews-plus/assigned-entities/store-006",
    "plain-slash": "store/006",
    "dots": "..",
    "dot": ".",
    "backslash": "store\\006",
    "newline": "store-006\n::error::forged",
    "nul": "store\x00006",
    "bidi-override": "store\u202e600",
    "tab": "store\t006",
}

ENCODED = {
    "query": "store-006?x=1",
    "fragment": "store-006#frag",
    "percent": "store%2D006",
    "space": "store 006",
    "unicode": "störe-006",
    "inner-dots": "store..006",
    "ampersand": "store-006&api_key=x",
    "leading-blank": " store-006",
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_id_the_vendor_cannot_hold_is_refused_at_validate(name, workspace, cli):
    desired = _write(workspace, REFUSED[name])
    refused = cli("validate", str(desired))
    assert refused.exit_code == 1
    first = refused.output.splitlines()[0]
    assert first.startswith(f"{desired / 'yext.yaml'}:"), refused.output
    assert "Traceback" not in refused.output
    planned = cli("plan", str(desired), "--sandbox")
    assert planned.exit_code == 1
    assert request_log(workspace, "yext") == []


@pytest.mark.parametrize("name", sorted(ENCODED))
def test_odd_id_reaches_exactly_its_own_url(name, workspace, cli):
    entity = ENCODED[name]
    desired = _write(workspace, entity)
    assert cli("validate", str(desired)).exit_code == 0
    applied = cli("apply", str(desired), "--sandbox", "--auto-approve")
    # The entity does not exist at the vendor: the assign fails, cleanly.
    assert applied.exit_code == 1, applied.output
    assert "Traceback" not in applied.output
    sent = changing(request_log(workspace, "yext"))
    assert len(sent) == 1, sent
    expected = f"{PACKS}/knowledge-pro/assigned-entities/{entity}"
    assert sent[0]["path"] == expected
    raw = sent[0]["raw_path"].split("?")[0]
    assert raw == f"{PACKS}/knowledge-pro/assigned-entities/{quote(entity, safe='')}"
    assert "x=1" not in sent[0]["query"] and "api_key=x" not in sent[0]["query"]


def test_control_characters_in_text_output_are_escaped(workspace, cli):
    desired = _write(workspace, "store-006?x=1")
    text = cli("plan", str(desired), "--sandbox").output
    assert "store-006?x=1" in text
    # A newline in an id can no longer reach the output: it is refused at load.
    assert cli("plan", str(_write(workspace, "a\n::error::x")), "--sandbox").exit_code == 1


@pytest.mark.parametrize("license", ["../reviews-plus", "a/b", ".."])
def test_a_license_id_the_url_path_cannot_hold_is_refused_at_validate(license, workspace, cli):
    target = _write(workspace, "store-006")
    text = (target / "yext.yaml").read_text().replace("knowledge-pro", json.dumps(license))
    (target / "yext.yaml").write_text(text)
    refused = cli("validate", str(target))
    assert refused.exit_code == 1
    assert refused.output.startswith(f"{target / 'yext.yaml'}:")
    assert "a license id cannot" in refused.output
