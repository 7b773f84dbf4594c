"""The JSON Schema editors use: generated from the models, checked in, and strict."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples" / "desired-state").glob("*.yaml"))


def check(schema: Path, document: Path) -> subprocess.CompletedProcess[str]:
    checker = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run([str(checker), "--schemafile", str(schema), str(document)],
                          capture_output=True, text=True, check=False)


def test_checked_in_schema_is_what_the_command_generates(monkeypatch):
    """The checked-in file covers the core's own vendors: vendor packages installed beside
    it (contrib/) add their blocks to the generated schema, not to this file."""
    from importlib.metadata import EntryPoint, entry_points

    from reconciler import discovery

    def core_only(group: str) -> list[EntryPoint]:
        return [p for p in entry_points(group=group) if p.value.startswith("reconciler.")]

    monkeypatch.setattr(discovery, "entry_points", core_only)
    monkeypatch.setattr(discovery, "_cache", {})
    generated = CliRunner().invoke(main, ["schema"]).stdout
    assert json.loads(generated) == json.loads((REPO / "reconciler.schema.json").read_text()), \
        "run `reconciler schema > reconciler.schema.json`"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_every_example_validates_and_points_at_the_schema(example):
    assert example.read_text().startswith(
        "# yaml-language-server: $schema=../../reconciler.schema.json")
    result = check(REPO / "reconciler.schema.json", example)
    assert result.returncode == 0, result.stdout


def test_unknown_keys_are_rejected_in_documents_and_connections(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("providers:\n  yext:\n    connection: {api_key_env: K, apikey: x}\n")
    result = check(REPO / "reconciler.schema.json", typo)
    assert result.returncode == 1 and "'apikey' was unexpected" in result.stdout
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "providers:\n  yext:\n    subjects:\n      - entity: a\n        licences: []\n")
    assert check(REPO / "reconciler.schema.json", wrong).returncode == 1


STRUCTURAL = [
    # What the models reject on their own is rejected by the schema too (the rest of the
    # corpus needs the loader: duplicates, capacity, environment variables, live pools).
    "attrs_not_a_mapping", "connection_missing_required", "connection_wrong_type",
    "empty_license_id", "empty_subject_id", "kind_typo", "license_is_a_number",
    "license_unknown_key", "license_without_id", "licenses_not_a_list", "limits_negative",
    "limits_unknown_key", "negative_quantity", "pool_negative_price", "pool_unknown_key",
    "protected_not_a_boolean", "subject_without_kind", "two_subject_kinds",
    "unknown_connection_key", "unknown_provider", "unknown_subject_key", "unknown_top_key",
    "unsupported_version", "wrong_subject_kind", "wrong_type_quantity",
]


def test_the_schema_rejects_what_the_models_reject():
    corpus = REPO / "tests" / "corpus" / "invalid"
    checker = Path(sys.executable).parent / "check-jsonschema"
    result = subprocess.run(
        [str(checker), "-o", "json", "--schemafile", str(REPO / "reconciler.schema.json"),
         *(f"{name}.yaml" for name in STRUCTURAL)],
        cwd=corpus, capture_output=True, text=True, check=False)
    report = json.loads(result.stdout)
    failing = {error["filename"] for error in report["errors"]}
    assert report["parse_errors"] == []
    assert sorted(f"{name}.yaml" for name in STRUCTURAL if f"{name}.yaml" not in failing) == []
