"""The SQL suite: lookups on 1,000,000 employees, through the gateway and straight to asyncpg.

Run::

    .venv/bin/python -m bench sql                          # local PostgreSQL, 1M rows
    .venv/bin/python -m bench sql --dsn postgresql://... --users 1000000 --duration 5

What happens (everything on this machine; the schema and every child are
removed or stopped at the end):

1. A schema of its own (``scimgw_bench_<random>``) in the PostgreSQL named by
   ``--dsn`` (else ``SCIM_GATEWAY_BENCH_PG_DSN``, else the local server at
   ``postgresql://postgres@127.0.0.1:5432/test``) gets deploy/sql/payroll.sql
   and ``--users`` employees, seeded with one ``INSERT ... SELECT`` over
   ``generate_series`` (secondary indexes built after the insert).
2. ``scim-gateway serve`` starts with one app on the ``sql`` adapter:
   ``mappings/payroll/sql.yaml`` (table mode) pointed at that schema, the
   ``mappings/payroll`` mapping, a pool of ``--connections`` connections and
   ``max_concurrency`` as large.
3. The same statements the adapter runs (taken from an adapter opened in the
   bench process: the page statement of ``userName eq`` and the read by id) are
   sent straight to an asyncpg pool of the same size: the floor the gateway
   adds its HTTP, SCIM and mapping work to. Their plans are printed
   (``EXPLAIN``): each must use an index.
4. Per scenario (``userName eq "emp<random>"`` through ``GET /Users?filter=``,
   and ``GET /Users/{random id}``), ``--connections`` closed-loop workers in
   this process drive each target: a warm-up, then ABBA-alternated rounds
   (gateway, direct, direct, gateway, ...), every answer checked (200 and the
   one expected employee; one row). p50/p99 of the latencies and req/s are
   printed side by side.

The workers are Python (aiohttp and asyncpg on one event loop, pinned to the
load cores; the gateway is pinned to the last core; PostgreSQL runs where the
system puts it), so both columns include the client's own cost; the
difference between them is the gateway's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg
import yaml

from adapters.sql import SqlAdapter, SqlSettings
from bench.core import choose_cpus, code_revision
from bench.servers import HOST, ROOT, Server, _start, gateway_command, make_token, server_env
from gateway.mapping.engine import MAPPINGS_DIR, load_mapping
from gateway.scim.filter import bind_filter, parse_filter
from gateway.scim.schema import build_resource_types
from gateway.sdk import Query

__all__ = ["SQL_SCENARIO_KEYS", "SqlOptions", "SqlReport", "format_sql_report", "run_sql_bench"]

LOCAL_DSN = "postgresql://postgres@127.0.0.1:5432/test"
PAYROLL_SQL = ROOT / "deploy" / "sql" / "payroll.sql"
APP = "bench"
FIRST_ID = 100001  # payroll.sql's identity starts here
FIRST_GROUP = 501  # org_unit's
SQL_SCENARIO_KEYS = ("filter", "get", "members")
_TITLES = {
    "filter": 'GET /Users?filter=userName eq "..."',
    "get": "GET /Users/{id}",
    "members": "GET /Groups/{id} (10,000 members)",
}
#: The two targets of a scenario: the gateway, and its baseline in the same run.
_TARGETS = {"members": ("excludedAttr=members", "members read")}
BIG_GROUP = 10_000


@dataclass(frozen=True)
class SqlOptions:
    dsn: str | None = None
    users: int = 1_000_000
    duration: int = 5
    connections: int = 8
    rounds: int = 0
    warmup: int = 1
    pin: bool = True
    scenarios: tuple[str, ...] = SQL_SCENARIO_KEYS


@dataclass
class Latencies:
    """The measured requests of one target in one scenario, over every round."""

    samples: list[float] = field(default_factory=list)  # seconds
    seconds: float = 0.0
    unexpected: int = 0
    first_problem: str = ""

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]

    @property
    def rps(self) -> float:
        return len(self.samples) / self.seconds if self.seconds else 0.0


@dataclass
class SqlRow:
    key: str
    gateway: Latencies
    direct: Latencies
    plan: str


@dataclass
class SqlReport:
    options: SqlOptions
    seed_seconds: float
    rows: list[SqlRow]
    pinning: str
    revision: str
    where: str

    def problems(self) -> list[str]:
        found = []
        for row in self.rows:
            names = _TARGETS.get(row.key, ("gateway", "asyncpg"))
            for name, side in zip(names, (row.gateway, row.direct), strict=True):
                if side.unexpected:
                    found.append(
                        f"{row.key} via {name}: {side.unexpected} unexpected answers "
                        f"({side.first_problem})"
                    )
            if "Index" not in row.plan:
                found.append(f"{row.key}: the plan uses no index ({row.plan})")
        return found


# -- the database --------------------------------------------------------------------------


def bench_dsn(given: str | None) -> str:
    return (
        given
        or os.environ.get("SCIM_GATEWAY_BENCH_PG_DSN")
        or os.environ.get("SCIM_GATEWAY_TEST_PG_DSN")
        or LOCAL_DSN
    )


async def create_payroll(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(PAYROLL_SQL.read_text("utf-8"))
    finally:
        await conn.close()


async def drop_schema(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def seed_employees(dsn: str, schema: str, count: int) -> float:
    """``count`` employees (``emp1``..) in one INSERT ... SELECT; the seconds it took.

    The secondary indexes are dropped and built again after the insert, in the
    same transaction: building an index once is faster than growing it row by row.
    """
    started = time.monotonic()
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        async with conn.transaction():
            await conn.execute("SET LOCAL maintenance_work_mem = '256MB'")
            indexes = await conn.fetch(
                "SELECT i.indexname, i.indexdef FROM pg_indexes AS i "
                "WHERE i.schemaname = $1 AND i.tablename = 'emp_master' AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint AS c WHERE c.conname = i.indexname)",
                schema,
            )
            for index in indexes:
                await conn.execute(f'DROP INDEX "{index["indexname"]}"')
            await conn.execute(
                """
                INSERT INTO emp_master
                    (logon_name, first_nm, last_nm, display_nm, email_addr, email_typ,
                     job_title, dept_nm, emp_status)
                SELECT 'emp' || g, 'First' || g, 'Last' || (g % 1000), 'Employee ' || g,
                       'emp' || g || '@payroll.example', 'work', 'Clerk', 'Dept ' || (g % 50),
                       CASE WHEN g % 10 = 0 THEN 'T' ELSE 'A' END
                FROM generate_series(1, $1) AS g
                """,
                count,
            )
            for index in indexes:
                await conn.execute(index["indexdef"])
        await conn.execute("ANALYZE emp_master")
    finally:
        await conn.close()
    return time.monotonic() - started


async def seed_group(dsn: str, schema: str, members: int) -> None:
    """Unit ``FIRST_GROUP`` with the first ``members`` employees."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(
            "INSERT INTO org_unit (unit_id, unit_nm) VALUES ($1, 'Big')", FIRST_GROUP
        )
        await conn.execute(
            "INSERT INTO org_unit_member (unit_id, emp_no) "
            "SELECT $1, g FROM generate_series($2::int, $2::int + $3::int - 1) AS g",
            FIRST_GROUP,
            FIRST_ID,
            members,
        )
    finally:
        await conn.close()


def payroll_settings(dsn: str, schema: str, connections: int) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((MAPPINGS_DIR / "payroll" / "sql.yaml").read_text())
    raw["dsn"] = "${env:SCIM_GATEWAY_BENCH_DSN}"
    raw["pool"] = {"min_size": connections, "max_size": connections}
    for section in ("users", "groups"):
        raw[section]["schema"] = schema
    return raw


# -- the statements the adapter runs -----------------------------------------------------------


@dataclass(frozen=True)
class Statements:
    lookup: str  # $1: the userName, then limit and offset
    by_id: str  # $1: the id
    group_by_id: str  # $1: the unit id


async def adapter_statements(settings: dict[str, Any]) -> Statements:
    adapter = SqlAdapter(
        SqlSettings.model_validate(settings),
        app=APP,
        mapping=load_mapping(MAPPINGS_DIR / "payroll"),
    )
    await adapter.open()
    try:
        user = build_resource_types()["User"]
        node = bind_filter(parse_filter('userName eq "x"'), user)
        store, where, params, order_by = adapter.build_search(Query("User", node))
        lookup = store.search_sql(where, order_by, len(params.values))
        return Statements(lookup, store.get_sql(), adapter.stores["Group"].get_sql())
    finally:
        await adapter.aclose()


async def plan_of(pool: asyncpg.Pool[asyncpg.Record], sql: str, args: Sequence[Any]) -> str:
    """The scan nodes of the statement's plan, e.g. ``Index Scan on emp_master_pkey``."""
    raw = await pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    found: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Scan" in node["Node Type"]:
            target = node.get("Index Name") or node.get("Relation Name") or ""
            found.append(f"{node['Node Type']} on {target}")
        for child in node.get("Plans", ()):
            walk(child)

    walk(json.loads(raw)[0]["Plan"])
    return "; ".join(found)


# -- load ------------------------------------------------------------------------------------

Call = Callable[[], Awaitable[str | None]]  # None: as expected; else what was wrong


async def drive(call: Call, workers: int, seconds: float, into: Latencies | None) -> None:
    """``workers`` closed loops calling ``call`` for ``seconds``; latencies into ``into``."""
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            problem = await call()
            elapsed = time.perf_counter() - started
            if into is not None:
                into.samples.append(elapsed)
                if problem is not None:
                    into.unexpected += 1
                    into.first_problem = into.first_problem or problem

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    if into is not None:
        into.seconds += time.perf_counter() - started


def _calls(
    key: str, users: int, http: aiohttp.ClientSession, base: str, pool: Any, sql: Statements
) -> tuple[Call, Call]:
    group_id = FIRST_GROUP

    def number() -> int:
        return random.randint(1, users)

    async def gateway_filter() -> str | None:
        n = number()
        text = quote(f'userName eq "emp{n}"', safe="")
        async with http.get(f"{base}/Users?filter={text}") as resp:
            body = await resp.json(content_type=None)
            if resp.status != 200 or body.get("totalResults") != 1:
                return f"status {resp.status}"
            found = body["Resources"][0]["userName"]
            return None if found == f"emp{n}" else "another employee"

    async def direct_filter() -> str | None:
        n = number()
        rows = await pool.fetch(sql.lookup, f"emp{n}", 100, 0)
        return None if len(rows) == 1 and rows[0]["logon_name"] == f"emp{n}" else "not one row"

    async def gateway_get() -> str | None:
        id = FIRST_ID + number() - 1
        async with http.get(f"{base}/Users/{id}") as resp:
            await resp.read()
            return None if resp.status == 200 else f"status {resp.status}"

    async def direct_get() -> str | None:
        row = await pool.fetchrow(sql.by_id, FIRST_ID + number() - 1)
        return None if row is not None else "no row"

    async def group(query: str, members: int) -> str | None:
        async with http.get(f"{base}/Groups/{group_id}{query}") as resp:
            body = await resp.json(content_type=None)
            found = len(body.get("members", ()))
            return None if (resp.status, found) == (200, members) else f"{resp.status}, {found}"

    async def group_excluding_members() -> str | None:
        return await group("?excludedAttributes=members", 0)

    async def group_with_members() -> str | None:
        return await group("", min(BIG_GROUP, users))

    if key == "filter":
        return gateway_filter, direct_filter
    if key == "members":  # after (members not read) next to before (read, as Entra never needs)
        return group_excluding_members, group_with_members
    return gateway_get, direct_get


def _rounds(options: SqlOptions) -> int:
    return options.rounds or max(1, min(5, options.duration))


async def measure(
    options: SqlOptions, gateway: Server, token: str, dsn: str, sql: Statements
) -> list[SqlRow]:
    rows = []
    connector = aiohttp.TCPConnector(limit=options.connections)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(connector=connector, headers=headers) as http,
        asyncpg.create_pool(
            dsn, min_size=options.connections, max_size=options.connections
        ) as pool,
    ):
        base = f"{gateway.origin}/apps/{APP}/scim/v2"
        for key in options.scenarios:
            via_gateway, direct = _calls(key, options.users, http, base, pool, sql)
            row = SqlRow(key, Latencies(), Latencies(), "")
            plans: dict[str, tuple[str, list[Any]]] = {
                "filter": (sql.lookup, ["emp1", 100, 0]),
                "members": (sql.group_by_id, [FIRST_GROUP]),
            }
            statement, args = plans.get(key, (sql.by_id, [FIRST_ID]))
            row.plan = await plan_of(pool, statement, args)
            for call in (via_gateway, direct):
                await drive(call, options.connections, options.warmup, None)
            rounds = _rounds(options)
            slice_ = options.duration / rounds
            for n in range(rounds):
                order = (
                    ((via_gateway, row.gateway), (direct, row.direct))
                    if n % 2 == 0
                    else ((direct, row.direct), (via_gateway, row.gateway))
                )
                for call, into in order:
                    await drive(call, options.connections, slice_, into)
            rows.append(row)
    return rows


def start_sql_gateway(
    workdir: Path,
    digest: str,
    settings: dict[str, Any],
    dsn: str,
    cpus: set[int] | None,
    connections: int,
) -> Server:
    def cmd(port: int) -> list[str]:
        config = {
            "server": {"host": HOST, "port": port},
            "log_level": "WARNING",
            "apps": {
                APP: {
                    "adapter": "sql",
                    "mapping": str(MAPPINGS_DIR / "payroll"),
                    "settings": settings,
                    "max_concurrency": connections,
                    "auth": {"tokens": [{"name": "bench", "sha256": digest}]},
                }
            },
        }
        path = workdir / f"gateway-{port}.yaml"
        path.write_text(json.dumps(config, indent=2), "utf-8")
        return [*gateway_command(), "serve", "--config", str(path)]

    env = {**server_env(), "SCIM_GATEWAY_BENCH_DSN": dsn}
    return _start("gateway", cmd, "/readyz", workdir, cpus, env=env)


@contextlib.contextmanager
def _pinned(cpus: set[int] | None) -> Iterator[None]:
    """This process (the load) on ``cpus`` while the block runs."""
    if cpus is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def run_sql_bench(options: SqlOptions, log: Callable[[str], None] = print) -> SqlReport:
    dsn = bench_dsn(options.dsn)
    schema = f"scimgw_bench_{secrets.token_hex(4)}"
    server_cpus, load_cpus, pinning = choose_cpus(options.pin)
    try:
        asyncio.run(create_payroll(dsn, schema))
        log(f"seeding {options.users:,} employees into {schema} ...")
        seconds = asyncio.run(seed_employees(dsn, schema, options.users))
        log(f"seeded in {seconds:.1f} s")
        if "members" in options.scenarios:
            asyncio.run(seed_group(dsn, schema, min(BIG_GROUP, options.users)))
        settings = payroll_settings(dsn, schema, options.connections)
        sql = asyncio.run(adapter_statements({**settings, "dsn": dsn}))
        token, digest = make_token()
        with tempfile.TemporaryDirectory(prefix="scim-bench-sql-") as folder:
            gateway = start_sql_gateway(
                Path(folder), digest, settings, dsn, server_cpus, options.connections
            )
            try:
                with _pinned(load_cpus):
                    rows = asyncio.run(measure(options, gateway, token, dsn, sql))
            finally:
                gateway.stop()
    finally:
        with contextlib.suppress(Exception):
            asyncio.run(drop_schema(dsn, schema))
    where = dsn.split("@")[-1]
    return SqlReport(options, seconds, rows, pinning, code_revision(), where)


def format_sql_report(report: SqlReport) -> str:
    o = report.options
    head = [
        f"SQL adapter bench: {o.users:,} employees (seeded in {report.seed_seconds:.1f} s) "
        f"in PostgreSQL at {report.where}; {o.connections} workers per target, "
        f"{o.duration} s each in {_rounds(o)} alternating rounds; code {report.revision}",
        f"pinning: {report.pinning}",
        "",
        f"{'scenario':<36} {'target':<16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    lines = list(head)
    for row in report.rows:
        first, second = _TARGETS.get(row.key, ("gateway (HTTP)", "asyncpg direct"))
        for name, side in ((first, row.gateway), (second, row.direct)):
            title = _TITLES[row.key] if side is row.gateway else ""
            lines.append(
                f"{title:<36} {name:<16} {side.rps:>8.0f} "
                f"{side.percentile(50) * 1e3:>8.2f} {side.percentile(99) * 1e3:>8.2f}"
            )
        ratio = (
            row.gateway.percentile(50) / row.direct.percentile(50)
            if row.direct.percentile(50)
            else 0.0
        )
        lines.append(f"{'':<36} {'p50 ratio':<16} {'':>8} {ratio:>8.2f}x")
        lines.append(f"{'':<36} plan: {row.plan}")
    problems = report.problems()
    lines += ["", "problems: " + ("; ".join(problems) if problems else "none")]
    return "\n".join(lines)
