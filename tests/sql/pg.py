"""A PostgreSQL server for the SQL adapter's tests, and the payroll schema in it.

Where the server comes from, first found first:

1. ``SCIM_GATEWAY_TEST_PG_DSN`` (any server the tests may create schemas in);
2. the local server at ``postgresql://postgres@127.0.0.1:5432/test`` (these
   machines run one with trust authentication);
3. a throwaway cluster made with ``initdb``/``pg_ctl`` (``/usr/lib/postgresql/*/bin``
   or the PATH), owned by the ``postgres`` user when the tests run as root, on a
   free port, removed afterwards;
4. none: the tests skip with the reason, or fail when ``CI`` is set.

Each test session works in schemas of its own (``scimgw_<random>``), dropped at
the end, so runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bench.sql import create_payroll, drop_schema, seed_employees

__all__ = [
    "create_payroll",
    "drop_schema",
    "empty_payroll",
    "new_schema_name",
    "postgres_server",
    "seed_employees",
]

LOCAL = "postgresql://postgres@127.0.0.1:5432/test"
TABLES = ("org_unit_member", "org_unit", "emp_master")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}")
    pytest.skip(f"no PostgreSQL for the SQL adapter tests: {reason}")


async def _reachable(dsn: str) -> str | None:
    """None when a connection works; else why not."""
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[str]:
    """A new cluster in a temporary folder, trust auth on loopback; stopped and removed after."""
    folder = Path(tempfile.mkdtemp(prefix="scimgw-pg-"))
    data, port = folder / "data", _free_port()
    as_user: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    run = [*as_user, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]
    subprocess.run(run, check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [*as_user, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log")]
    subprocess.run([*ctl, "-o", options, "-w", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The DSN of a server to test against (see the module docstring)."""
    given = os.environ.get("SCIM_GATEWAY_TEST_PG_DSN")
    if given:
        problem = asyncio.run(_reachable(given))
        if problem:
            _unavailable(f"SCIM_GATEWAY_TEST_PG_DSN does not connect ({problem})")
        yield given
        return
    if asyncio.run(_reachable(LOCAL)) is None:
        yield LOCAL
        return
    bin_dir = _binaries()
    if bin_dir is None:
        _unavailable(f"nothing at {LOCAL}, and no initdb to start a cluster")
        return
    with throwaway_cluster(bin_dir) as dsn:
        yield dsn


def new_schema_name(tag: str = "") -> str:
    return f"scimgw_{tag}{secrets.token_hex(4)}"


async def empty_payroll(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        tables = ", ".join(f'"{schema}"."{t}"' for t in TABLES)
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    finally:
        await conn.close()
