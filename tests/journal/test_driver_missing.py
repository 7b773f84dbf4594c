"""Without the `postgres` extra, a postgresql:// journal is a one-line error naming it."""

from __future__ import annotations

import subprocess
import sys

# Runs the CLI with every `psycopg` import failing, as on an install without the extra.
WITHOUT_PSYCOPG = """
import sys

class NoPsycopg:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"psycopg", "psycopg_binary"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoPsycopg())
from reconciler.cli import main
sys.argv[0] = "reconciler"
main()
"""


def test_postgres_journal_without_the_driver_names_the_extra(tmp_path):
    url = "postgresql://reconciler:s3cret-pw@127.0.0.1:1/reconciler"
    result = subprocess.run([sys.executable, "-c", WITHOUT_PSYCOPG, "journal", "--journal", url],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: a PostgreSQL journal needs the psycopg driver (No module named 'psycopg'): "
        "pip install 'license-reconciler[postgres]'"]


def test_the_sandbox_demo_on_the_default_sqlite_journal_needs_no_driver(tmp_path):
    for command in (["sandbox", "init", "demo"], ["plan", "demo", "--sandbox"],
                    ["apply", "demo", "--sandbox", "--auto-approve"], ["journal"]):
        result = subprocess.run([sys.executable, "-c", WITHOUT_PSYCOPG, *command], cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, (command, result.stderr)
    assert (tmp_path / ".reconciler" / "journal.db").is_file()
