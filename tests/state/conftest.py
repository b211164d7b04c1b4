"""The state store on both backends: ``state_url`` is a fresh SQLite file or a fresh
PostgreSQL schema (``?search_path=``), per test; ``settings_with`` builds gateway
settings whose audit trail lives there."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sql.pg import drop_schema, new_schema_name, postgres_server
from support import TOKEN, digest

from gateway.config import Settings, parse_settings

CHECKPOINT_KEY = "checkpoint-key-for-tests-0123456789"
ADMIN_TOKEN = "admin-token-0123456789abcdef"


@pytest.fixture(scope="session")
def state_pg_dsn() -> Iterator[str]:
    with postgres_server() as dsn:
        yield dsn


async def _create_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Sync on purpose: the PostgreSQL finder runs its own event loop."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    dsn: str = request.getfixturevalue("state_pg_dsn")
    schema = new_schema_name("state_")
    asyncio.run(_create_schema(dsn, schema))
    yield f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"
    asyncio.run(drop_schema(dsn, schema))


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def settings_with(state_url: str) -> SettingsFactory:
    def make(**audit: Any) -> Settings:
        raw = {
            "apps": {
                "crm": {
                    "adapter": "memory",
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            },
            "state": {
                "url": state_url,
                "lease_seconds": 2,
                # Reads recorded, as these tests count them (the default, "none", has its own).
                "audit": {"checkpoint_key": CHECKPOINT_KEY, "reads": "all", **audit},
            },
            "admin": {"tokens": [{"name": "auditor", "sha256": digest(ADMIN_TOKEN)}]},
        }
        return parse_settings(raw)

    return make
