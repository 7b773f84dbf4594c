"""The schema is created and migrated by reconciler itself, and versioned."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from reconciler.journal import Journal
from reconciler.journal.schema import CURRENT

REPO = Path(__file__).resolve().parents[2]

# The journal as reconciler wrote it before versioning (entries only).
LEGACY = """
CREATE TABLE entries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, run_id TEXT NOT NULL,
    action_id TEXT NOT NULL, provider TEXT NOT NULL, event TEXT NOT NULL, outcome TEXT,
    request_digest TEXT NOT NULL, vendor_request_id TEXT, message TEXT NOT NULL DEFAULT '',
    action_json TEXT NOT NULL);
CREATE INDEX entries_action ON entries(action_id, seq);
INSERT INTO entries (at, run_id, action_id, provider, event, outcome, request_digest,
                     vendor_request_id, message, action_json)
VALUES ('2026-01-01T00:00:00.000+00:00', 'r1', 'admanager:assign:E3:ann', 'admanager',
        'finished', 'pending', 'd1', 'REQ-7', '', '{}');
"""


def test_unversioned_sqlite_journal_is_migrated_keeping_its_rows(tmp_path):
    path = tmp_path / "journal.db"
    with sqlite3.connect(path) as db:
        db.executescript(LEGACY)
    with Journal(path) as journal:
        (pending,) = journal.pending()
        assert (pending.vendor_request_id, pending.git_commit) == ("REQ-7", None)
        assert journal.claim_plan("d") is None
        assert journal.store.read("SELECT version FROM schema_version") == [(CURRENT,)]
    with Journal(path) as again:  # idempotent
        assert len(again.rows()) == 1


def test_runs_opening_a_new_database_at_once_all_get_the_schema(pg_url):
    opener = "import sys; from reconciler.journal import Journal; Journal(sys.argv[1]).close()"
    runs = [subprocess.Popen([sys.executable, "-c", opener, pg_url], cwd=REPO,
                             stderr=subprocess.PIPE, text=True) for _ in range(8)]
    failures = [p.stderr.read() for p in runs if p.wait(timeout=120) != 0 and p.stderr]
    assert failures == []
    with Journal(pg_url) as journal:
        assert journal.store.read("SELECT version FROM schema_version") == [(CURRENT,)]
