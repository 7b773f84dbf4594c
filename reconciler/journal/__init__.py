"""The journal: every vendor-changing call, before and after, on SQLite or PostgreSQL.

`open_journal(target)` is what commands use: a path (SQLite, the default
`.reconciler/journal.db`) or a `postgresql://` URL, from `--journal` or the
RECONCILER_JOURNAL_URL environment variable. `Journal(target)` opens one directly.
"""

from reconciler.journal.core import ENV_RETENTION_DAYS, Journal, open_journal
from reconciler.journal.entries import Entry, parse_when, request_digest
from reconciler.journal.group import GroupCommit
from reconciler.journal.store import DEFAULT_PATH, ENV_URL, is_url, journal_target, mask_dsn

__all__ = [
    "DEFAULT_PATH",
    "ENV_RETENTION_DAYS",
    "ENV_URL",
    "Entry",
    "GroupCommit",
    "Journal",
    "is_url",
    "journal_target",
    "mask_dsn",
    "open_journal",
    "parse_when",
    "request_digest",
]
