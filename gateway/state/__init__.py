"""The gateway's state store (SQLite or PostgreSQL) and the audit trail kept in it.

``build_audit(settings, source)`` makes the pieces, ``running(audit)`` opens the
store (migrations, lease, recovery) for a server's lifetime, ``open_log`` opens it
for a command-line tool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Settings
from gateway.state.audit import AuditLog, Checkpoint, Filters, Verdict
from gateway.state.db import Database, StateError, Tx
from gateway.state.recorder import AuditRecorder
from gateway.state.store import StateStore

__all__ = [
    "DEFAULT_FILE",
    "Audit",
    "AuditLog",
    "AuditRecorder",
    "Checkpoint",
    "Database",
    "Filters",
    "StateError",
    "StateStore",
    "Tx",
    "Verdict",
    "build_audit",
    "open_log",
    "running",
    "state_url",
]

#: The state file of a server whose config names no state.url (next to the config file).
DEFAULT_FILE = "scim-gateway-state.db"


def state_url(settings: Settings, source: str) -> str | None:
    """The store's URL; relative SQLite paths are taken from the config file's folder.

    Settings built in code (``source`` like ``<demo>``) have no default store.
    """
    in_code = source.startswith("<")
    base = Path(".") if in_code else Path(source).parent
    if settings.state.url is None:
        return None if in_code else f"sqlite:///{base / DEFAULT_FILE}"
    url = settings.state.url.get_secret_value()
    if url.startswith("sqlite:///"):
        return f"sqlite:///{base / url.removeprefix('sqlite:///')}"
    return url


@dataclass(frozen=True, slots=True)
class Audit:
    store: StateStore
    log: AuditLog
    recorder: AuditRecorder


def _log(settings: Settings, url: str) -> AuditLog:
    key = settings.state.audit.checkpoint_key
    store = StateStore(url, lease_seconds=settings.state.lease_seconds)
    return AuditLog(store, key.get_secret_value().encode() if key else None)


def build_audit(settings: Settings, source: str) -> Audit | None:
    """The audit trail of a server, or None when it is off or has no store."""
    url = state_url(settings, source)
    if url is None or not settings.state.audit.enabled:
        return None
    log = _log(settings, url)
    audit = settings.state.audit
    recorder = AuditRecorder(
        log,
        retention_days=audit.retention_days,
        values=audit.values,
        sensitive=audit.sensitive,
        reads=audit.reads,
        reads_sample_every=audit.reads_sample_every,
    )
    return Audit(log.store, log, recorder)


@asynccontextmanager
async def running(audit: Audit) -> AsyncIterator[None]:
    await audit.store.open()
    try:
        await audit.recorder.start()
        try:
            yield
        finally:
            await audit.recorder.aclose()
    finally:
        await audit.store.close()


@asynccontextmanager
async def open_log(settings: Settings, source: str) -> AsyncIterator[AuditLog]:
    """The audit trail for a tool (no lease: it finalizes nothing and recovers nothing)."""
    url = state_url(settings, source)
    if url is None:
        raise StateError("no state store: set state.url")
    log = _log(settings, url)
    await log.store.open(lease=False)
    try:
        yield log
    finally:
        await log.store.close()
