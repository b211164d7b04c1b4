"""``python -m bench [memory|rest|sql|tracing|audit|workers|all]``: run a suite, print its table.

``memory`` (the default) is the gateway on the memory adapter vs. fixed answers
(:mod:`bench.core`); ``rest`` is the gateway on the REST adapter vs. a
hand-written proxy, both in front of Acme HR (:mod:`bench.rest`); ``sql`` is the
gateway on the SQL adapter vs. the same statements sent straight to asyncpg, on
1,000,000 payroll rows in PostgreSQL (:mod:`bench.sql`); ``tracing`` is the
gateway with tracing on vs. off (:mod:`bench.tracing`); ``instructions`` is
tracing off vs. a build without OpenTelemetry calls, in instructions per
request counted by callgrind (:mod:`bench.instructions`); ``audit`` is the gateway
on the memory adapter with the audit trail on (SQLite, PostgreSQL) vs. off
(:mod:`bench.audit`); ``workers`` is ``serve --workers 2`` vs. one worker,
unpinned, with their audit trails checked after (:mod:`bench.workers`);
``mapping`` is every shipped mapping's from_legacy/to_legacy per record, templates
rendered by Jinja vs. compiled, in process (:mod:`bench.mapping`);
``all`` runs memory and rest, one after the other.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from bench.audit import AUDIT_SCENARIO_KEYS, format_audit_report, run_audit_bench
from bench.core import BenchOptions, run_bench
from bench.instructions import (
    CallgrindError,
    InstructionOptions,
    format_instruction_report,
    run_instruction_bench,
)
from bench.ldap import LdapOptions, format_ldap_report, run_ldap_bench
from bench.load import LoadError
from bench.mapping import MappingOptions, format_mapping_report, run_mapping_bench
from bench.report import format_report, format_rest_report
from bench.rest import LEGACY_PLACEMENTS, REST_SCENARIO_KEYS, RestOptions, run_rest_bench
from bench.scenarios import SCENARIO_KEYS
from bench.servers import ServerError
from bench.sql import SQL_SCENARIO_KEYS, SqlOptions, format_sql_report, run_sql_bench
from bench.tracing import format_tracing_report, run_tracing_bench
from bench.workers import WORKERS_SCENARIO_KEYS, format_workers_report, run_workers_bench

SUITES = (
    "memory",
    "rest",
    "sql",
    "tracing",
    "instructions",
    "audit",
    "workers",
    "ldap",
    "mapping",
    "all",
)
ALL_KEYS = tuple(dict.fromkeys((*SCENARIO_KEYS, *REST_SCENARIO_KEYS, *SQL_SCENARIO_KEYS)))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _scenarios(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in ALL_KEYS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(
            f"choose from {','.join(SCENARIO_KEYS)} (memory suite), "
            f"{','.join(REST_SCENARIO_KEYS)} (rest suite)"
        )
    return keys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="The gateway next to a bare aiohttp baseline, on loopback, in one run.",
    )
    p.add_argument(
        "suite",
        nargs="?",
        choices=SUITES,
        default="memory",
        help="memory: memory adapter vs. fixed answers (default); rest: REST adapter to Acme HR "
        "vs. a hand-written aiohttp proxy; sql: SQL adapter on 1M PostgreSQL rows vs. the "
        "same statements straight to asyncpg; tracing: the gateway with tracing on vs. off; "
        "instructions: tracing off vs. no OpenTelemetry calls, instructions per request "
        "(callgrind); "
        "audit: audit trail on (SQLite, PostgreSQL) vs. off; workers: serve --workers 2 vs. "
        "one worker; ldap: 10,000 users provisioned and listed through the LDAP adapter into "
        "slapd vs. ldap3 direct; mapping: each shipped mapping's from_legacy/to_legacy per "
        "record, Jinja vs. compiled templates, in process; all: memory and rest",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=5,
        help="measured seconds per scenario and target, split into alternating rounds (5)",
    )
    p.add_argument("--connections", "-c", type=_positive, default=16, help="open connections (16)")
    p.add_argument(
        "--threads", "-t", type=_positive, default=1, help="wrk threads (1: one core for wrk)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="alternating runs per target and scenario (default: one per second, at most 5)",
    )
    p.add_argument(
        "--warmup", type=int, default=1, help="discarded seconds per scenario and target (1)"
    )
    p.add_argument("--users", type=_positive, default=1000, help="users to seed (1000)")
    p.add_argument(
        "--scenarios",
        type=_scenarios,
        default=None,
        help=f"comma-separated subset of {','.join(SCENARIO_KEYS)} (memory suite, all by "
        f"default) or {','.join(REST_SCENARIO_KEYS)} (rest suite, all by default)",
    )
    p.add_argument(
        "--loader",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or force one",
    )
    p.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin servers and load generator to separate cores",
    )
    p.add_argument(
        "--legacy-on",
        choices=LEGACY_PLACEMENTS,
        default="servers",
        help="rest suite: pin Acme HR to the servers' core (default) or to the load generator's",
    )
    p.add_argument(
        "--proxy-limit",
        type=int,
        default=0,
        help="rest suite: Acme HR calls the proxy keeps in flight at once (0: unbounded, the "
        "default; 8 matches the gateway's max_concurrency)",
    )
    p.add_argument(
        "--dsn",
        default=None,
        help="sql and audit suites: the PostgreSQL to make a schema of its own in (default: "
        "SCIM_GATEWAY_BENCH_PG_DSN, else postgresql://postgres@127.0.0.1:5432/test)",
    )
    p.add_argument(
        "--sampling",
        type=float,
        default=0.1,
        help="tracing suite: share of requests traced with tracing on (0.1; 1 = always)",
    )
    p.add_argument(
        "--requests",
        type=_positive,
        default=1000,
        help="instructions suite: requests counted per scenario and gateway (1000)",
    )
    p.add_argument(
        "--rows",
        type=_positive,
        default=1_000_000,
        help="sql suite: employees to seed (1000000)",
    )
    return p


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so run_bench's clean-up stops the servers.
    raise SystemExit(128 + signum)


def _chosen(
    p: argparse.ArgumentParser, suite: str, given: tuple[str, ...] | None, keys: tuple[str, ...]
) -> tuple[str, ...]:
    """The scenarios of ``suite`` to run: all of them, or those of ``--scenarios`` it has."""
    if given is None:
        return keys
    chosen = tuple(k for k in given if k in keys)
    if not chosen:
        p.error(f"--scenarios: the {suite} suite has only {','.join(keys)}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    common = {
        "duration": args.duration,
        "connections": args.connections,
        "threads": args.threads,
        "rounds": max(0, args.rounds),
        "warmup": max(0, args.warmup),
        "users": args.users,
        "loader": args.loader,
        "pin": args.pin,
    }
    suites = ("memory", "rest") if args.suite == "all" else (args.suite,)
    if args.suite != "all" and args.scenarios is not None:
        keys = {
            "memory": SCENARIO_KEYS,
            "tracing": SCENARIO_KEYS,
            "instructions": SCENARIO_KEYS,
            "sql": SQL_SCENARIO_KEYS,
            "audit": AUDIT_SCENARIO_KEYS,
            "workers": WORKERS_SCENARIO_KEYS,
        }.get(args.suite, REST_SCENARIO_KEYS)
        unknown = [k for k in args.scenarios if k not in keys]
        if unknown:
            p.error(f"--scenarios: the {args.suite} suite has only {','.join(keys)}")
    signal.signal(signal.SIGTERM, _terminate)
    status = 0
    for suite in suites:
        try:
            if suite == "memory":
                scenarios = _chosen(p, suite, args.scenarios, SCENARIO_KEYS)
                report = run_bench(BenchOptions(scenarios=scenarios, **common))
                text, failed = format_report(report), bool(report.problems())
            elif suite == "tracing":
                scenarios = _chosen(p, suite, args.scenarios, SCENARIO_KEYS)
                traced = run_tracing_bench(
                    BenchOptions(scenarios=scenarios, **common),
                    log=lambda line: print(line, file=sys.stderr, flush=True),
                    sampling=args.sampling,
                )
                text, failed = format_tracing_report(traced), bool(traced.problems())
            elif suite == "instructions":
                scenarios = _chosen(p, suite, args.scenarios, SCENARIO_KEYS)
                counted = run_instruction_bench(
                    InstructionOptions(
                        requests=args.requests, users=min(args.users, 200), scenarios=scenarios
                    ),
                    log=lambda line: print(line, file=sys.stderr, flush=True),
                )
                text, failed = format_instruction_report(counted), bool(counted.problems())
            elif suite == "workers":
                scenarios = _chosen(p, suite, args.scenarios, WORKERS_SCENARIO_KEYS)
                workers = run_workers_bench(
                    BenchOptions(scenarios=scenarios, **common),
                    log=lambda line: print(line, file=sys.stderr, flush=True),
                )
                text, failed = format_workers_report(workers), bool(workers.problems())
            elif suite == "audit":
                scenarios = _chosen(p, suite, args.scenarios, AUDIT_SCENARIO_KEYS)
                audit = run_audit_bench(BenchOptions(scenarios=scenarios, **common), args.dsn)
                text, failed = format_audit_report(audit), bool(audit.problems())
            elif suite == "ldap":  # 10,000 users into slapd by default (--users 1000: 1,000)
                users = args.users if "--users" in (argv or sys.argv) else 10_000
                ldap = run_ldap_bench(
                    LdapOptions(users=users, connections=min(args.connections, 8)),
                    log=lambda line: print(line, file=sys.stderr, flush=True),
                )
                text, failed = format_ldap_report(ldap), bool(ldap.problems())
            elif suite == "mapping":  # in process: no servers, no load generator
                mapping = run_mapping_bench(
                    MappingOptions(rounds=max(args.rounds, 1) if args.rounds else 7),
                    log=lambda line: print(line, file=sys.stderr, flush=True),
                )
                text, failed = format_mapping_report(mapping), bool(mapping.problems())
            elif suite == "sql":
                scenarios = _chosen(p, suite, args.scenarios, SQL_SCENARIO_KEYS)
                sql_options = SqlOptions(
                    dsn=args.dsn,
                    users=args.rows,
                    duration=args.duration,
                    connections=args.connections,
                    rounds=max(0, args.rounds),
                    warmup=max(0, args.warmup),
                    pin=args.pin,
                    scenarios=scenarios,
                )
                sql = run_sql_bench(sql_options, log=lambda line: print(line, file=sys.stderr))
                text, failed = format_sql_report(sql), bool(sql.problems())
            else:
                scenarios = _chosen(p, suite, args.scenarios, REST_SCENARIO_KEYS)
                options = RestOptions(
                    scenarios=scenarios,
                    legacy_on=args.legacy_on,
                    proxy_limit=max(0, args.proxy_limit),
                    **common,
                )
                rest = run_rest_bench(options)
                text, failed = format_rest_report(rest), bool(rest.problems())
        except KeyboardInterrupt:
            print("interrupted; servers stopped", file=sys.stderr)
            return 130
        except (ServerError, LoadError, CallgrindError, RuntimeError) as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 2
        if len(suites) > 1:
            print(f"\n=== {suite} suite ===", flush=True)
        print(text, flush=True)
        status = max(status, 1 if failed else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
