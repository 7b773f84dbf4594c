"""The PostgreSQL variant of the GitHub Actions templates: valid, zizmor-clean, and
with no journal artifact (the database is the journal)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VARIANT = sorted((REPO / "examples" / "github-actions" / "postgresql").glob("*.yml"))


def tool(name: str) -> str:
    found = shutil.which(name) or str(Path(sys.executable).parent / name)
    assert Path(found).exists(), f"{name} is installed by the dev extras"
    return found


def test_each_artifact_template_has_its_postgresql_twin():
    artifact = sorted(p.name for p in (REPO / "examples" / "github-actions").glob("*.yml"))
    assert [p.name for p in VARIANT] == artifact


@pytest.mark.parametrize("workflow", VARIANT, ids=[w.name for w in VARIANT])
def test_variant_matches_the_schema_and_uses_the_secret_dsn(workflow):
    result = subprocess.run([tool("check-jsonschema"), "--builtin-schema",
                             "vendor.github-workflows", str(workflow)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    job = next(iter(yaml.safe_load(workflow.read_text())["jobs"].values()))
    assert "reconciler-journal" not in workflow.read_text()
    using = [s for s in job["steps"]
             if re.search(r"^ *reconciler (plan|apply|drift) ", s.get("run", ""), re.M)]
    assert using
    for step in using:  # the DSN reaches only the steps that run reconciler, as a secret
        assert step["env"]["RECONCILER_JOURNAL_URL"] == "${{ secrets.RECONCILER_JOURNAL_URL }}"
        commands = re.findall(r"^ *reconciler (?:plan|apply|drift) .*$", step["run"], re.M)
        assert all("--lock-timeout" in c and "--journal" not in c for c in commands)


def test_variant_is_zizmor_clean():
    result = subprocess.run([tool("zizmor"), "--offline", "--format", "json",
                             *map(str, VARIANT)], capture_output=True, text=True, check=False)
    assert result.returncode != 1 and result.stdout.lstrip().startswith("["), result.stderr
    serious = [f["ident"] for f in json.loads(result.stdout)
               if f["determinations"]["severity"] in {"Medium", "High"}]
    assert serious == []
