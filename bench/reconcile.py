"""Reconcile's memory on a big app: peak RSS of ``scim-gateway reconcile`` at N rows vs. N/100.

Run::

    .venv/bin/python -m bench.reconcile                       # local PostgreSQL, 1M rows
    .venv/bin/python -m bench.reconcile --rows 1000000 --dsn postgresql://...

What happens (everything on this machine; the schemas and files are removed at the end):

1. Two schemas of their own in PostgreSQL get deploy/sql/payroll.sql: the baseline
   with ``--rows``/100 employees, the big one with ``--rows`` (seeded as bench/sql.py
   does, one ``INSERT ... SELECT generate_series``).
2. For each, a config with one app on the ``sql`` adapter (``mappings/payroll``,
   table mode) and a fresh SQLite state store whose ledger holds 1,000 accounts the
   app does not have (so the run also reports "missing"); every employee is then an
   orphan: the worst case for what a run writes to the store.
3. ``scim-gateway reconcile --app payroll --format csv`` runs as a child process,
   its report to /dev/null; the bench samples the child's ``VmHWM`` (peak resident
   set) and reports it with the wall time and rows per second. Bounded memory means
   the big run's peak is about the baseline's: the ratio is the figure to watch.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.sql import bench_dsn, create_payroll, drop_schema, payroll_settings, seed_employees
from gateway.mapping.engine import MAPPINGS_DIR

PLANTED_MISSING = 1000


@dataclass(frozen=True)
class Run:
    rows: int
    peak_rss_kib: int
    seconds: float
    exit_code: int
    missing: int
    attempts: int = 1

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def write_config(folder: Path, dsn: str, schema: str, page_size: int) -> Path:
    settings = payroll_settings(dsn, schema, connections=2)
    raw: dict[str, Any] = {
        "apps": {
            "payroll": {
                "adapter": "sql",
                "mapping": str(MAPPINGS_DIR / "payroll"),
                "settings": settings,
                "auth": {"tokens": [{"name": "idp", "secret": "bench-token-0123456789"}]},
                "max_count": max(page_size, 1000),
            }
        },
        "state": {"url": f"sqlite:///{folder / 'state.db'}"},
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), "utf-8")
    return path


def plant_missing(config: Path, env: dict[str, str]) -> None:
    """Create the store (migrations run on first open), then ledger rows the app lacks."""
    subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "list", "-c", str(config), "--limit", "1"],
        env=env,
        check=True,
        capture_output=True,
    )
    with sqlite3.connect(config.parent / "state.db") as db:
        db.executemany(
            "INSERT INTO account (app, resource_type, scim_id, name, state, fingerprint, "
            "provisioned_by, created, changed, changed_by) VALUES "
            "('payroll', 'User', ?, ?, 'active', NULL, 'bench', '2026-01-01T00:00:00.000000Z', "
            "'2026-01-01T00:00:00.000000Z', 'bench')",
            [(str(900_000_000 + i), f"gone{i}") for i in range(PLANTED_MISSING)],
        )


def peak_rss(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def reconcile_child(config: Path, env: dict[str, str], rows: int, page_size: int) -> Run:
    """The run, resumed (``--resume``) up to twice if it stops on an error (the shared
    PostgreSQL of a test machine may drop a connection); peak RSS over the attempts."""
    runs = [_attempt(config, env, rows, page_size, resume=False)]
    while runs[-1].exit_code == 2 and len(runs) < 3:
        runs.append(_attempt(config, env, rows, page_size, resume=True))
    last = runs[-1]
    if last.exit_code not in (0, 1):
        raise RuntimeError("reconcile failed three times")
    peak = max(r.peak_rss_kib for r in runs)
    return Run(rows, peak, sum(r.seconds for r in runs), last.exit_code, last.missing, len(runs))


def _attempt(config: Path, env: dict[str, str], rows: int, page_size: int, *, resume: bool) -> Run:
    command = [
        sys.executable,
        "-m",
        "gateway.cli",
        "reconcile",
        "--app",
        "payroll",
        "--format",
        "csv",
        "--page-size",
        str(page_size),
        "-c",
        str(config),
        *(["--resume"] if resume else []),
    ]
    started = time.monotonic()
    with open(os.devnull, "w") as sink:
        child = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.PIPE, text=True)
        peak = 0
        while child.poll() is None:
            peak = max(peak, peak_rss(child.pid) or 0)
            time.sleep(0.05)
        stderr = child.stderr.read() if child.stderr else ""
    seconds = time.monotonic() - started
    if child.returncode not in (0, 1):
        print(f"reconcile stopped ({child.returncode}): {stderr[-500:]}", file=sys.stderr)
    missing = int(stderr.split(" missing")[0].rsplit(" ", 1)[-1]) if " missing" in stderr else 0
    return Run(rows, peak, seconds, child.returncode, missing)


async def prepare(dsn: str, schema: str, rows: int) -> float:
    await create_payroll(dsn, schema)
    return await seed_employees(dsn, schema, rows)


def measure(dsn: str, rows: int, page_size: int, log: Any = print) -> Run:
    schema = f"scimgw_reconcile_{os.getpid()}_{rows}"
    try:
        seeded = asyncio.run(prepare(dsn, schema, rows))
        log(f"seeded {rows:,} employees in {seeded:.1f} s")
        with tempfile.TemporaryDirectory(prefix="scimgw-reconcile-") as folder:
            config = write_config(Path(folder), dsn, schema, page_size)
            env = {**os.environ, "SCIM_GATEWAY_BENCH_DSN": dsn}
            plant_missing(config, env)
            run = reconcile_child(config, env, rows, page_size)
        log(
            f"reconciled {rows:,} rows: peak RSS {run.peak_rss_kib / 1024:.1f} MiB, "
            f"{run.seconds:.1f} s"
        )
        return run
    finally:
        asyncio.run(drop_schema(dsn, schema))


def report(baseline: Run, big: Run) -> str:
    lines = [
        "| rows | peak RSS (MiB) | seconds | rows/s | missing found | exit | attempts |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in (baseline, big):
        lines.append(
            f"| {run.rows:,} | {run.peak_rss_kib / 1024:.1f} | {run.seconds:.1f} | "
            f"{run.rows_per_second:,.0f} | {run.missing} | {run.exit_code} | {run.attempts} |"
        )
    ratio = big.peak_rss_kib / baseline.peak_rss_kib if baseline.peak_rss_kib else 0.0
    lines.append(
        f"\npeak RSS x{ratio:.2f} for x{big.rows / baseline.rows:.0f} the rows "
        "(bounded memory: about x1)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reconcile", description=__doc__)
    p.add_argument("--dsn", help="the PostgreSQL to make schemas in (default: as bench sql)")
    p.add_argument("--rows", type=int, default=1_000_000, help="employees of the big run")
    p.add_argument("--page-size", type=int, default=1000, help="accounts per page (1000)")
    args = p.parse_args(argv)
    dsn = bench_dsn(args.dsn)
    baseline = measure(dsn, max(1000, args.rows // 100), args.page_size)
    big = measure(dsn, args.rows, args.page_size)
    print(report(baseline, big))
    if baseline.missing != PLANTED_MISSING or big.missing != PLANTED_MISSING:
        print(f"expected {PLANTED_MISSING} missing in each run", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
