"""``python -m bench workers``: one worker vs. ``serve --workers 2``, on every core, in one run.

Two ``scim-gateway serve`` processes (the second a supervisor with two
workers), identical otherwise: the memory adapter started from the same seed
file (so every worker holds the same users and GET by id rotates over ids they
all know), the shipped defaults (audit trail in SQLite beside the config, JSON
access log on), tracing off. Nothing is pinned: the workers, the single
gateway and the load generator share the machine's cores, as they would in
production. :func:`bench.core._measure` ABBA-alternates them per scenario (its
"gateway" side is two workers, its "baseline" side one).

Then both are stopped (SIGTERM: requests in flight finish, audits flush) and
their trails checked: as many finalized events as access lines (one each per
request), none left pending, and ``scim-gateway audit verify`` passing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import re
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.core import BenchOptions, Row, _measure, code_revision, make_loader
from bench.load import PythonLoader, Target
from bench.report import _runs, _table, pair_cells, pair_columns, suspect
from bench.scenarios import Scenario, build_scenarios, seed_user_name
from bench.servers import (
    APP,
    HOST,
    Server,
    ServerError,
    _start,
    auth_headers,
    gateway_command,
    make_token,
    server_env,
    stop,
)

Log = Callable[[str], None]
WORKERS_SCENARIO_KEYS = ("get", "post")
STATE_FILE = "scim-gateway-state.db"


@dataclass
class TrailCheck:
    """What one gateway's audit trail holds after the run."""

    events: int = 0
    pending: int = 0
    access_lines: int = 0
    verified: bool = False
    writers: int = 0  #: distinct instance ids (one per worker process)

    @property
    def ok(self) -> bool:
        return self.verified and not self.pending and self.events == self.access_lines


@dataclass
class WorkersReport:
    options: BenchOptions
    loader: str
    fallback: bool
    rows: list[Row]
    users_seeded: int
    trails: dict[str, TrailCheck] = field(default_factory=dict)
    revision: str = ""
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [p for row in self.rows for p in row.problems()]
        for name, trail in self.trails.items():
            if not trail.ok:
                verdict = "ok" if trail.verified else "FAILED"
                out.append(
                    f"{name}: audit trail: {trail.events} events for {trail.access_lines} "
                    f"requests, {trail.pending} pending, verify {verdict}"
                )
        return out


def write_seed(path: Path, users: int) -> list[str]:
    ids = [f"seed-{i:06d}" for i in range(users)]
    resources = [{"id": id_, "userName": seed_user_name(i)} for i, id_ in enumerate(ids)]
    path.write_text(json.dumps({"Users": resources}), "utf-8")
    return ids


def write_config(workdir: Path, digest: str, port: int, seed: Path) -> Path:
    config = {
        "server": {"host": HOST, "port": port},
        "log_level": "INFO",
        "apps": {
            APP: {
                "adapter": "memory",
                "settings": {"max_resources": 10_000_000, "seed": str(seed)},
                "auth": {"tokens": [{"name": "bench", "sha256": digest}]},
            }
        },
        # Every request an event (reads too; the default, audit.reads: none, skips them).
        "state": {"audit": {"reads": "all"}},
    }
    path = workdir / "gateway.yaml"
    path.write_text(json.dumps(config, indent=2), "utf-8")
    return path


def start_workers(workdir: Path, digest: str, seed: Path, workers: int) -> Server:
    def cmd(port: int) -> list[str]:
        config = write_config(workdir, digest, port, seed)
        return [*gateway_command(), "serve", "--config", str(config), "--workers", str(workers)]

    server = _start(f"gateway-{workers}w", cmd, "/readyz", workdir, None)
    if workers > 1:
        _wait_for_workers(server, workers)
    return server


def _wait_for_workers(server: Server, workers: int, timeout: float = 60.0) -> None:
    """/readyz answers once one worker is up; wait for every worker's ready line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = server.log.read_text("utf-8", errors="replace")
        if len(re.findall(r"worker \d+ ready", text)) >= workers:
            return
        time.sleep(0.1)
    raise ServerError(f"{server.name}: not every worker got ready:\n{server.log_tail()}")


def check_trail(workdir: Path, server: Server) -> TrailCheck:
    """Count and verify a stopped gateway's audit trail against its access lines."""
    check = TrailCheck()
    with contextlib.closing(sqlite3.connect(workdir / STATE_FILE)) as db:
        check.events = db.execute(
            "SELECT count(*) FROM audit_event WHERE outcome != 'pending'"
        ).fetchone()[0]
        check.pending = db.execute(
            "SELECT count(*) FROM audit_event WHERE outcome = 'pending'"
        ).fetchone()[0]
        check.writers = db.execute(
            "SELECT count(DISTINCT instance_id) FROM audit_event"
        ).fetchone()[0]
    text = server.log.read_text("utf-8", errors="replace")
    check.access_lines = text.count('"logger":"gateway.access"')
    verify = subprocess.run(
        [*gateway_command(), "audit", "verify", "-c", str(workdir / "gateway.yaml")],
        capture_output=True,
        env=server_env(),
        timeout=300,
        check=False,
    )
    check.verified = verify.returncode == 0
    return check


def _scenarios(keys: tuple[str, ...]) -> list[Scenario]:
    out = []
    for scenario in build_scenarios("unused", seed_user_name(0)):
        if scenario.key == "get":
            scenario = dataclasses.replace(scenario, path="/Users/{id}")
        if scenario.key in keys:
            out.append(scenario)
    return out


def run_workers_bench(options: BenchOptions, log: Log) -> WorkersReport:
    keys = tuple(k for k in options.scenarios if k in WORKERS_SCENARIO_KEYS)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scim-workers-")))
        loader, notes = make_loader(options, None, workdir)
        token, digest = make_token()
        users = max(1, options.users)
        seed = workdir / "seed.json"
        ids = write_seed(seed, users)
        dirs = {n: workdir / f"w{n}" for n in (1, 2)}
        servers: dict[int, Server] = {}
        for n, where in dirs.items():
            where.mkdir()
            log(f"starting scim-gateway serve --workers {n} (memory adapter, seeded alike)...")
            servers[n] = start_workers(where, digest, seed, n)
            stack.callback(stop, servers[n].proc, 60.0)
        headers = auth_headers(token)
        targets = {
            "gateway": Target("2 workers", servers[2].origin, headers, ids[:100]),
            "baseline": Target("1 worker", servers[1].origin, headers, ids[:100]),
        }
        log("measuring (in the lines below: gateway = 2 workers, baseline = 1 worker)")
        rows = [
            _measure(s, targets, loader, options.warmup, options.slices(), log)
            for s in _scenarios(keys)
        ]
        trails = {}
        for n, server in servers.items():
            stop(server.proc, 60.0)  # SIGTERM: in-flight requests end, the audit flushes
            trails[f"{n} worker{'s' if n > 1 else ''}"] = check_trail(dirs[n], server)
    return WorkersReport(
        options=options,
        loader=loader.description,
        fallback=isinstance(loader, PythonLoader),
        rows=rows,
        users_seeded=users,
        trails=trails,
        revision=code_revision(),
        notes=notes,
    )


def format_workers_report(report: WorkersReport) -> str:
    o = report.options
    slices = o.slices()
    lines = [
        "scim-gateway workers: serve --workers 2 vs. one worker, memory adapter, shipped "
        "defaults (audit in SQLite, access log on)",
        f"  loader:   {report.loader}",
        f"  timing:   {sum(slices)} s measured per scenario and side, {_runs(slices)}, "
        f"after {o.warmup} s of discarded warm-up each",
        "  pinning:  none: gateways and load generator share every core",
        f"  data:     {report.users_seeded} users from one seed file in every worker",
        f"  software: Python {platform.python_version()}; code {report.revision}",
        "",
        _table(pair_columns("1w", "2w"), [pair_cells(r) for r in report.rows]),
        "",
        "2w/1w = req/s of two workers / req/s of one (2.0 = perfect scaling on two cores, "
        "less the load generator's share).",
    ]
    for name, trail in report.trails.items():
        lines.append(
            f"audit trail, {name}: {trail.events} finalized events for {trail.access_lines} "
            f"access lines (requests), {trail.pending} pending, {trail.writers} writer "
            f"process(es), audit verify {'passed' if trail.verified else 'FAILED'}"
        )
    lines += [f"note: {note}" for note in report.notes]
    lines += suspect(report.problems())
    return "\n".join(lines)


__all__ = [
    "WORKERS_SCENARIO_KEYS",
    "WorkersReport",
    "format_workers_report",
    "run_workers_bench",
]
