"""The journal's schema, versioned: created and migrated by reconciler itself.

Version N is the same logical schema on both backends. SQLite files written before
versioning (an `entries` table, maybe `applied_plans`, no `schema_version`) count as
version 0: the first two steps are idempotent, so they pass over what exists. A
journal from a newer reconciler is refused instead of written in a shape it does not
expect: an older tool could otherwise drop what the newer one relies on.
"""

from __future__ import annotations

from reconciler.errors import JournalSchemaError
from reconciler.journal.store import Store, Tx

CURRENT = 3

_ENTRY_COLUMNS = """
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    event TEXT NOT NULL,
    outcome TEXT,
    request_digest TEXT NOT NULL,
    vendor_request_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    action_json TEXT NOT NULL
"""

_PROVENANCE = [
    "ALTER TABLE entries ADD COLUMN git_commit TEXT",
    "ALTER TABLE entries ADD COLUMN ci_run TEXT",
    "ALTER TABLE entries ADD COLUMN actor TEXT",
    "ALTER TABLE entries ADD COLUMN plan_digest TEXT",
    "CREATE INDEX IF NOT EXISTS entries_at ON entries(at)",
]

_APPLIED_PLANS = (
    "CREATE TABLE IF NOT EXISTS applied_plans "
    "(digest TEXT PRIMARY KEY, at TEXT NOT NULL, run_id TEXT NOT NULL)"
)

MIGRATIONS: dict[str, list[list[str]]] = {
    "sqlite": [
        [  # 1: every vendor-changing call, before and after
            "CREATE TABLE IF NOT EXISTS entries "
            f"(seq INTEGER PRIMARY KEY AUTOINCREMENT, {_ENTRY_COLUMNS})",
            "CREATE INDEX IF NOT EXISTS entries_action ON entries(action_id, seq)",
        ],
        [_APPLIED_PLANS],  # 2: a plan applies once
        _PROVENANCE,  # 3: who, from which commit and CI run; time-range queries
    ],
    "postgresql": [
        [
            "CREATE TABLE IF NOT EXISTS entries "
            f"(seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {_ENTRY_COLUMNS})",
            "CREATE INDEX IF NOT EXISTS entries_action ON entries(action_id, seq)",
        ],
        [_APPLIED_PLANS],
        [
            *_PROVENANCE,
            # Who holds (or is waiting for) which advisory lock; a row outlives a dead
            # holder, so readers join it with pg_locks, and holders sweep dead rows.
            "CREATE TABLE IF NOT EXISTS lock_holders (key BIGINT NOT NULL, "
            "backend_pid INTEGER NOT NULL, provider TEXT NOT NULL, scope TEXT NOT NULL, "
            "host TEXT NOT NULL, pid INTEGER NOT NULL, ci_run TEXT, since TEXT NOT NULL, "
            "PRIMARY KEY (key, backend_pid))",
        ],
    ],
}


def migrate(store: Store) -> int:
    """Brings the store to CURRENT; returns the version it found (0: new or unversioned).

    The common case (already current) is one read and no lock, so twenty runs opening
    the journal at once do not queue behind each other.
    """
    if store.has_table("schema_version"):
        found = _version(store.read("SELECT MAX(version) FROM schema_version"))
        _refuse_newer(store, found)
        if found == CURRENT:
            return found
    with store.migration() as tx:
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        found = _version(tx.execute("SELECT MAX(version) FROM schema_version").fetchall())
        _refuse_newer(store, found)
        for version in range(found + 1, CURRENT + 1):
            _step(tx, MIGRATIONS[store.dialect][version - 1])
        if found != CURRENT:
            tx.execute("DELETE FROM schema_version")
            tx.execute("INSERT INTO schema_version (version) VALUES (?)", (CURRENT,))
    return found


def _step(tx: Tx, statements: list[str]) -> None:
    for statement in statements:
        tx.execute(statement)


def _version(rows: list[tuple[object, ...]]) -> int:
    value = rows[0][0] if rows else None
    return int(value) if isinstance(value, int | str) else 0


def _refuse_newer(store: Store, found: int) -> None:
    if found > CURRENT:
        raise JournalSchemaError(
            f"the journal at {store.description} has schema version {found}, newer than "
            f"this reconciler understands ({CURRENT}): a newer reconciler wrote it. "
            "Upgrade reconciler (in CI: pin the action's newer commit) to use this journal; "
            "nothing was written to it."
        )
