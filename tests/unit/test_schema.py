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


def test_checked_in_schema_is_what_the_command_generates():
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
