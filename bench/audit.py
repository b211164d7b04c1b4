"""``python -m bench audit``: what the audit trail costs a request, on vs. off, in one run.

Three ``scim-gateway serve`` processes on the memory adapter, alike but for
``state:``: audit off, audit in a SQLite file, audit in PostgreSQL (a schema
of its own on ``--dsn``, else ``SCIM_GATEWAY_BENCH_PG_DSN``, else the local
server; left out with a note when none answers). Each is seeded with the same
number of users. For GET by id and POST, each audited gateway is measured
against the unaudited one in alternating rounds (ABBA, as :mod:`bench.core`),
so the ratio is audit-on throughput over audit-off throughput.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from bench.core import BenchOptions, Row, _measure, _stderr, choose_cpus, code_revision, make_loader
from bench.load import PythonLoader, Target
from bench.report import _runs, _table, row_cells, suspect
from bench.scenarios import Scenario, build_scenarios
from bench.servers import auth_headers, make_token, seed_users, start_gateway
from bench.sql import bench_dsn, drop_schema

AUDIT_SCENARIO_KEYS = ("get", "post")


@dataclass
class AuditReport:
    options: BenchOptions
    loader: str
    fallback: bool
    pinning: str
    #: (store, row): the row's "gateway" is audit on in that store, its "baseline" audit off.
    rows: list[tuple[str, Row]]
    revision: str = ""
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [p for _, row in self.rows for p in row.problems()]


def _scenarios(keys: tuple[str, ...]) -> list[Scenario]:
    # GET rotates over each gateway's own seeded ids: the memory adapter's ids are random.
    get = Scenario("get", "GET /Users/{id}", "GET", "/Users/{id}")
    post = next(s for s in build_scenarios("unused", "unused") if s.key == "post")
    return [s for s in (get, post) if s.key in keys]


async def _pg_schema(dsn: str) -> str | None:
    """A new schema for the audit trail, or None when the server does not answer."""
    schema = f"scimgw_audit_bench_{secrets.token_hex(4)}"
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    return schema


def _states(
    workdir: Path, dsn: str, stack: contextlib.ExitStack, notes: list[str]
) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {
        "off": {"audit": {"enabled": False}},
        # Reads audited too (audit.reads defaults to none), as this suite measures them.
        "sqlite": {"url": f"sqlite:///{workdir / 'audit.db'}", "audit": {"reads": "all"}},
    }
    schema = asyncio.run(_pg_schema(dsn))
    if schema is None:
        notes.append("PostgreSQL did not answer (--dsn): its rows are left out")
    else:
        stack.callback(lambda: asyncio.run(drop_schema(dsn, schema)))
        join = "&" if "?" in dsn else "?"
        states["postgresql"] = {
            "url": f"{dsn}{join}search_path={schema}",
            "audit": {"reads": "all"},
        }
    return states


def run_audit_bench(
    options: BenchOptions, dsn: str | None = None, log: Callable[[str], None] = _stderr
) -> AuditReport:
    server_cpus, load_cpus, pinning = choose_cpus(options.pin)
    revision = code_revision()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scim-bench-")))
        loader, notes = make_loader(options, load_cpus, workdir)
        token, digest = make_token()
        targets: dict[str, Target] = {}
        for name, state in _states(workdir, bench_dsn(dsn), stack, notes).items():
            log(f"starting the gateway with audit {name} and seeding {options.users} users...")
            server = start_gateway(workdir, digest, server_cpus, state=state)
            stack.callback(server.stop)
            ids = seed_users(server.base_url, token, max(1, options.users))
            targets[name] = Target(name, server.origin, auth_headers(token), ids[:100])
        rows: list[tuple[str, Row]] = []
        for scenario in _scenarios(tuple(options.scenarios)):
            for store in (n for n in targets if n != "off"):
                pair = {"gateway": targets[store], "baseline": targets["off"]}
                log(f"{scenario.label}: audit in {store} (gateway) vs. off (baseline)")
                rows.append(
                    (store, _measure(scenario, pair, loader, options.warmup, options.slices(), log))
                )
    return AuditReport(
        options=options,
        loader=loader.description,
        fallback=isinstance(loader, PythonLoader),
        pinning=pinning,
        rows=rows,
        revision=revision,
        notes=notes,
    )


AUDIT_COLUMNS = (
    ("scenario", "<"),
    ("audit in", "<"),
    ("on req/s", ">"),
    ("off req/s", ">"),
    ("ratio", ">"),
    ("rounds: med (min-max)", ">"),
    ("on p50 ms", ">"),
    ("on p99 ms", ">"),
    ("off p50 ms", ">"),
    ("off p99 ms", ">"),
    ("p50 x", ">"),
    ("errors", ">"),
)


def _cells(store: str, row: Row) -> list[str]:
    label, *rest = row_cells(row)
    return [label, store, *rest]


def format_audit_report(report: AuditReport) -> str:
    o = report.options
    slices = o.slices()
    lines = [
        "scim-gateway audit benchmark: memory adapter, audit on (SQLite / PostgreSQL) vs. off",
        f"  loader:   {report.loader}",
        f"  timing:   {sum(slices)} s measured per scenario and target, {_runs(slices)}, "
        f"after {o.warmup} s of discarded warm-up each",
        f"  pinning:  {report.pinning}",
        f"  data:     {o.users} users seeded per gateway; code {report.revision}",
        "",
        _table(AUDIT_COLUMNS, [_cells(store, row) for store, row in report.rows]),
        "",
        "ratio = audit-on req/s / audit-off req/s (1.0 = the audit costs nothing); "
        "p50 x = on p50 / off p50.",
    ]
    lines += [f"note: {note}" for note in report.notes]
    closing = ", ".join(f"{row.scenario.key} {store} {row.ratio:.2f}" for store, row in report.rows)
    lines.append(f"closing note: audit-on/off throughput: {closing}")
    lines += suspect(report.problems())
    return "\n".join(lines)


__all__ = ["AUDIT_SCENARIO_KEYS", "AuditReport", "format_audit_report", "run_audit_bench"]
