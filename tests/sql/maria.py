"""A MariaDB (or MySQL) server for the SQL adapter's tests, and the payroll database in it.

Where the server comes from, first found first:

1. ``SCIM_GATEWAY_TEST_MYSQL_DSN`` (``mysql://user:password@host:port``, a user that may
   create databases);
2. the local server at ``mysql://root@127.0.0.1:3306`` (Debian's mariadb-server lets
   root in without a password from loopback on these machines);
3. a throwaway server made with Debian's ``mariadb-install-db``/``mariadbd`` in a
   temporary folder, on a free loopback port, removed afterwards. ``./dev test``
   installs ``mariadb-server`` when the binaries are missing (as root, with apt);
4. none: the tests skip with the reason, or fail when ``CI`` is set.

Each test session works in a database of its own (``scimgw_<random>``), dropped at
the end, so runs never see each other's rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from adapters.sql import mysql

__all__ = ["PAYROLL_SQL", "create_payroll", "drop_database", "empty_payroll", "mariadb_server"]

LOCAL = "mysql://root@127.0.0.1:3306"
PAYROLL_SQL = Path(__file__).parents[2] / "deploy" / "sql" / "payroll-mariadb.sql"
TABLES = ("org_unit_member", "org_unit", "emp_master")
STARTS = {"emp_master": 100001, "org_unit": 501}
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to the end on a loop of its own (callers may be inside a running loop)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"MariaDB is required in CI: {reason}")
    pytest.skip(f"no MariaDB for the SQL adapter tests: {reason}")


async def _reachable(dsn: str) -> str | None:
    try:
        conn = await asyncio.wait_for(mysql.connect(dsn), 5)
    except Exception as exc:  # any failure: this server is not usable
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def throwaway_server() -> Iterator[str]:
    """A new server in a temporary folder, root without a password on loopback only."""
    install, server = shutil.which("mariadb-install-db"), shutil.which("mariadbd")
    server = server or ("/usr/sbin/mariadbd" if Path("/usr/sbin/mariadbd").exists() else None)
    if install is None or server is None:
        _unavailable("no server at 127.0.0.1:3306 and no mariadb-install-db/mariadbd")
        return
    folder = Path(tempfile.mkdtemp(prefix="scimgw-maria-"))
    data, port, user = folder / "data", _free_port(), "root" if os.geteuid() == 0 else ""
    as_user = [f"--user={user}"] if user else []
    subprocess.run(
        [install, "--no-defaults", f"--datadir={data}", *as_user,
         "--auth-root-authentication-method=normal", "--skip-test-db"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    process = subprocess.Popen(
        [server, "--no-defaults", f"--datadir={data}", f"--port={port}", *as_user,
         "--bind-address=127.0.0.1", f"--socket={folder / 'sock'}", "--skip-log-bin",
         f"--pid-file={folder / 'pid'}", "--innodb-flush-log-at-trx-commit=0"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / "log").open("wb"),
    )  # fmt: skip
    dsn = f"mysql://root@127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while run(_reachable(dsn)) is not None:
            if process.poll() is not None or time.monotonic() > deadline:
                _unavailable(f"mariadbd did not start: {(folder / 'log').read_text()[-500:]}")
            time.sleep(0.2)
        yield dsn
    finally:
        process.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(30)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def mariadb_server() -> Iterator[str]:
    """The DSN (no database) of a server to test against (see the module docstring)."""
    given = os.environ.get("SCIM_GATEWAY_TEST_MYSQL_DSN")
    if given:
        problem = run(_reachable(given))
        if problem:
            _unavailable(f"SCIM_GATEWAY_TEST_MYSQL_DSN does not connect ({problem})")
        yield given.rstrip("/")
        return
    if run(_reachable(LOCAL)) is None:
        yield LOCAL
        return
    with throwaway_server() as dsn:
        yield dsn


def new_database_name() -> str:
    return f"scimgw_{secrets.token_hex(4)}"


async def create_payroll(server: str, database: str) -> None:
    conn = await mysql.connect(server)
    try:
        await conn.execute(f"CREATE DATABASE `{database}`")
        await conn.execute(f"USE `{database}`")
        for statement in _statements(PAYROLL_SQL.read_text("utf-8")):
            await conn.execute(statement)
    finally:
        await conn.close()


def _statements(script: str) -> list[str]:
    """The script's statements (no procedures in it: ``;`` at a line's end ends one)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


async def drop_database(server: str, database: str) -> None:
    conn = await mysql.connect(server)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS `{database}`")
    finally:
        await conn.close()


async def empty_payroll(dsn: str) -> None:
    """Every row gone and the ids starting over, as payroll.sql's would after TRUNCATE."""
    conn = await mysql.connect(dsn)
    try:
        await conn.execute("SET FOREIGN_KEY_CHECKS = 0")
        for table in TABLES:
            await conn.execute(f"TRUNCATE TABLE `{table}`")
        for table, start in STARTS.items():
            await conn.execute(f"ALTER TABLE `{table}` AUTO_INCREMENT = {start}")
    finally:
        await conn.close()
