"""Versioned schema migrations of the state store, applied at start-up.

Each migration is a number and its statements, per dialect; ``schema_version``
records the numbers applied. A feature that needs a table of its own appends
a migration with the next number to both lists (never edits an applied one).
All pending migrations run in one transaction, behind a lock (PostgreSQL: an
advisory transaction lock; SQLite: ``BEGIN IMMEDIATE``), so replicas that
start together apply each migration once.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.state.db import Database, StateError

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _audit(serial: str, real: str) -> tuple[str, ...]:
    return (
        f"""CREATE TABLE audit_event (
            id {serial},
            event_id TEXT NOT NULL,
            instance_id TEXT NOT NULL,
            seq BIGINT UNIQUE,
            time TEXT NOT NULL,
            app TEXT NOT NULL,
            client TEXT,
            user_agent TEXT,
            remote TEXT,
            method TEXT NOT NULL,
            path TEXT NOT NULL,
            operation TEXT NOT NULL,
            resource_type TEXT,
            scim_id TEXT,
            legacy_id TEXT,
            name TEXT,
            changed TEXT NOT NULL,
            outcome TEXT NOT NULL,
            status INTEGER NOT NULL,
            scim_type TEXT,
            duration_ms {real},
            trace_id TEXT,
            failed_step TEXT,
            bulk_id TEXT,
            extra TEXT NOT NULL,
            change_values TEXT,
            prev_hash TEXT,
            hash TEXT
        )""",
        "CREATE INDEX audit_event_time ON audit_event (time)",
        # Pending events are looked up by id; finalized ones need no such index (cheaper
        # inserts), their ids being unique by construction (instance id + counter).
        "CREATE UNIQUE INDEX audit_event_pending ON audit_event (event_id) WHERE seq IS NULL",
        """CREATE TABLE audit_head (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq BIGINT NOT NULL,
            hash TEXT NOT NULL
        )""",
        f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS}')",
        """CREATE TABLE audit_checkpoint (
            seq BIGINT PRIMARY KEY,
            hash TEXT NOT NULL,
            time TEXT NOT NULL,
            signature TEXT NOT NULL
        )""",
        f"""CREATE TABLE instance_lease (
            instance_id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            started TEXT NOT NULL,
            expires {real} NOT NULL
        )""",
    )


def _safety(serial: str, real: str) -> tuple[str, ...]:
    """The deprovisioning guard (gateway/state/guard.py) and the creates of unknown
    outcome (gateway/state/unknown.py). Times are epoch seconds; ``id`` keeps the
    order rows were recorded in, so the oldest go first when a bound is reached."""
    keys = tuple(
        statement
        for table in ("guard_held", "guard_released")
        for statement in (
            f"""CREATE TABLE {table} (
                id {serial},
                app TEXT NOT NULL,
                key TEXT NOT NULL,
                at {real} NOT NULL,
                UNIQUE (app, key)
            )""",
            f"CREATE INDEX {table}_order ON {table} (app, id)",
        )
    )
    return (
        # One row per guarded app: the row a deciding transaction locks, and the open release.
        f"CREATE TABLE guard_app (app TEXT PRIMARY KEY, open_until {real})",
        f"CREATE TABLE guard_passed (app TEXT NOT NULL, at {real} NOT NULL)",
        "CREATE INDEX guard_passed_at ON guard_passed (app, at)",
        *keys,
        f"""CREATE TABLE unknown_create (
            id {serial},
            key TEXT NOT NULL UNIQUE,
            until {real} NOT NULL
        )""",
        "CREATE INDEX unknown_create_until ON unknown_create (until)",
    )


def _ledger(real: str) -> tuple[str, ...]:
    """What the gateway wrote to each app (gateway/state/ledger.py) and the reconcile runs
    (gateway/reconcile.py): a run's position, the ledger accounts it saw, its findings."""
    return (
        f"""CREATE TABLE account (
            app TEXT NOT NULL,
            resource_type TEXT NOT NULL,
            scim_id TEXT NOT NULL,
            name TEXT,
            state TEXT NOT NULL,
            fingerprint TEXT,
            provisioned_by TEXT,
            created TEXT NOT NULL,
            changed TEXT NOT NULL,
            changed_by TEXT,
            deactivated_at {real},
            PRIMARY KEY (app, resource_type, scim_id)
        )""",
        "CREATE INDEX account_state ON account (app, state)",
        """CREATE TABLE reconcile_run (
            run_id TEXT PRIMARY KEY,
            app TEXT NOT NULL,
            started TEXT NOT NULL,
            resource_type TEXT NOT NULL,
            position INTEGER NOT NULL,
            last_id TEXT,
            total INTEGER,
            done INTEGER NOT NULL
        )""",
        """CREATE TABLE reconcile_seen (
            run_id TEXT NOT NULL,
            resource_type TEXT NOT NULL,
            scim_id TEXT NOT NULL,
            PRIMARY KEY (run_id, resource_type, scim_id)
        )""",
        """CREATE TABLE reconcile_finding (
            run_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            resource_type TEXT NOT NULL,
            scim_id TEXT NOT NULL,
            name TEXT,
            detail TEXT,
            PRIMARY KEY (run_id, kind, resource_type, scim_id)
        )""",
    )


MIGRATIONS: dict[str, list[Migration]] = {
    "sqlite": [
        Migration(1, "audit trail", _audit("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL")),
        # A plain rowid: a new row still gets a larger id than every row left.
        Migration(2, "guard and unknown creates", _safety("INTEGER PRIMARY KEY", "REAL")),
        Migration(3, "account ledger and reconcile runs", _ledger("REAL")),
    ],
    "postgresql": [
        Migration(1, "audit trail", _audit("BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")),
        Migration(
            2, "guard and unknown creates", _safety("BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION")
        ),
        Migration(3, "account ledger and reconcile runs", _ledger("DOUBLE PRECISION")),
    ],
}


async def migrate(db: Database) -> int:
    """Apply every migration not applied yet; the schema version afterwards."""
    migrations = MIGRATIONS[db.dialect]
    async with db.transaction() as tx:
        await db.lock_migrations(tx)
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
        )
        row = await tx.fetchrow("SELECT MAX(version) AS v FROM schema_version")
        current = int(row["v"]) if row and row["v"] is not None else 0
        latest = migrations[-1].version
        if current > latest:
            raise StateError(
                f"the state store is at schema version {current}, newer than this "
                f"gateway knows ({latest}): upgrade the gateway"
            )
        for migration in migrations:
            if migration.version <= current:
                continue
            for statement in migration.statements:
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_version (version, name, applied) "
                "VALUES (?, ?, CAST(CURRENT_TIMESTAMP AS TEXT))",
                migration.version,
                migration.name,
            )
        return latest
