"""``python -m bench instructions``: what tracing *off* costs, counted in instructions.

The tracing suite (:mod:`bench.tracing`) compares throughput, and on a shared
VM two runs of the same build differ by a few percent, as much as the cost
the "off" row looks for (goal: tracing off costs at most 2 % against a build
without OpenTelemetry calls). Valgrind's callgrind counts the instructions a
process executes instead: the same work gives the same count whatever else
the machine does. So this suite runs two gateways (memory adapter, shipped
defaults: audit and access log on) under ``valgrind --tool=callgrind``:

* no otel: :mod:`bench.no_otel`, the gateway with its span helpers cut out;
* off: tracing not configured (``OTEL_SDK_DISABLED=true``), as shipped.

Start-up runs with instrumentation off (``--instr-atstart=no``), at a few
times native speed. Then, per scenario and gateway: instrumentation on, a
warm-up, counters zeroed (``callgrind_control -z``), ``--requests`` requests
one after another on one keep-alive connection, counters dumped (``-d``).
Every thread of the process counts (the audit's SQLite writer included), and
both run with ``PYTHONHASHSEED=0``, so string hashing probes dicts alike. The
figure is instructions per request; the ratio is no otel over off (0.98 = off
executes 2 % more), the shape of the throughput ratios.

Tracing *on* is left to the throughput suite: its cost is well above the
noise, and its span export runs in batches (512 spans, or every 5 s) that a
run of a thousand one-at-a-time requests under valgrind would not reproduce.
Instructions are not time: a cache miss or a system call's wait is not in
them. They measure what code runs, which is what "off costs nothing" is about.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.core import code_revision
from bench.report import _table
from bench.scenarios import SCENARIO_KEYS, SCIM_JSON, Scenario, pick_id, rendered, seed_user_name
from bench.servers import (
    BASE_PATH,
    Server,
    _start,
    auth_headers,
    gateway_command,
    make_token,
    seed_users,
    server_env,
    write_gateway_config,
)
from bench.tracing import OFF_ENV, _scenarios

Log = Callable[[str], None]
#: Seconds a gateway under valgrind may take to answer /readyz (native: about one).
START_SECONDS = 300.0
BUILDS = ("no otel", "off")
COLUMNS = (("scenario", "<"), ("no otel", ">"), ("off", ">"), ("off/no-otel", ">"))


class CallgrindError(RuntimeError):
    """valgrind or callgrind_control is missing, or a dump could not be read."""


@dataclass(frozen=True)
class InstructionOptions:
    requests: int = 1000  #: measured requests per scenario and gateway
    warmup: int = 100
    users: int = 200
    scenarios: Sequence[str] = SCENARIO_KEYS


@dataclass
class InstructionRow:
    scenario: Scenario
    #: build -> instructions per request
    per_request: dict[str, float] = field(default_factory=dict)

    def ratio(self, baseline: str, target: str) -> float:
        return self.per_request[baseline] / self.per_request[target]


@dataclass
class InstructionReport:
    options: InstructionOptions
    rows: list[InstructionRow]
    revision: str
    valgrind: str
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        for row in self.rows:
            if any(count <= 0 for count in row.per_request.values()):
                out.append(f"{row.scenario.label}: no instructions counted")
        return out


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CallgrindError(f"{name} is not installed (Debian/Ubuntu: apt-get install valgrind)")
    return found


class Counted:
    """One gateway under callgrind, and its counters."""

    def __init__(self, server: Server, out: Path, control: str) -> None:
        self.server = server
        self.out = out
        self.control = control
        self.dumps = 0

    def _ask(self, *args: str) -> None:
        subprocess.run(
            [self.control, *args, str(self.server.proc.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def instrument(self, on: bool) -> None:
        self._ask("-i", "on" if on else "off")

    def zero(self) -> None:
        self._ask("-z")

    def dump(self) -> int:
        """Dump the counters; the instructions counted since they were zeroed."""
        self._ask("-d")
        self.dumps += 1
        path = self.out.with_name(f"{self.out.name}.{self.dumps}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                for line in path.read_text("utf-8", "replace").splitlines():
                    if line.startswith("summary:") or line.startswith("totals:"):
                        return int(line.split()[1])
            time.sleep(0.1)
        raise CallgrindError(f"callgrind wrote no totals to {path}")


def start_counted(
    workdir: Path, name: str, digest: str, env: dict[str, str], module: str | None, control: str
) -> Counted:
    where = workdir / name.replace(" ", "-")
    where.mkdir()
    out = where / "callgrind.out"

    def cmd(port: int) -> list[str]:
        config = write_gateway_config(where, digest, port)
        program = [sys.executable, "-m", module] if module else gateway_command()
        valgrind = [
            _tool("valgrind"),
            "--tool=callgrind",
            "--instr-atstart=no",
            f"--callgrind-out-file={out}",
        ]
        return [*valgrind, *program, "serve", "--config", str(config)]

    # One hash seed for both: string hashes (so dict probes) are then the same in each.
    child_env = {**server_env(), **env, "PYTHONHASHSEED": "0"}
    server = _start(
        f"gateway-{where.name}", cmd, "/readyz", where, None, 3, START_SECONDS, child_env
    )
    return Counted(server, out, control)


async def _send(
    origin: str, token: str, scenario: Scenario, ids: Sequence[str], count: int, tag: str
) -> None:
    """``count`` requests of ``scenario``, one after another on one connection."""
    connector = aiohttp.TCPConnector(limit=1)
    headers = {**auth_headers(token), "Content-Type": SCIM_JSON}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for n in range(1, count + 1):
            values: dict[str, str | int] = {
                "id": pick_id(ids, 1, n),
                "prefix": tag,
                "tid": 1,
                "n": n,
            }
            path, body = rendered(scenario, values)
            async with session.request(
                scenario.method, origin + BASE_PATH + path, data=body
            ) as resp:
                await resp.read()
                if resp.status != scenario.status:
                    raise CallgrindError(
                        f"{scenario.label}: HTTP {resp.status} (expected {scenario.status})"
                    )


def measure(
    counted: Counted,
    token: str,
    scenario: Scenario,
    ids: Sequence[str],
    options: InstructionOptions,
) -> float:
    """Instructions per request of ``scenario`` on one gateway (instrumented only meanwhile)."""
    origin = counted.server.origin
    counted.instrument(True)
    try:
        asyncio.run(_send(origin, token, scenario, ids, options.warmup, "w"))
        counted.zero()
        asyncio.run(_send(origin, token, scenario, ids, options.requests, "m"))
        return counted.dump() / options.requests
    finally:
        counted.instrument(False)


def run_instruction_bench(options: InstructionOptions, log: Log) -> InstructionReport:
    control = _tool("callgrind_control")
    version = subprocess.run(
        [_tool("valgrind"), "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scim-instr-")))
        token, digest = make_token()

        log("starting two gateways under callgrind (memory adapter): no otel, off...")
        gateways = {
            "no otel": start_counted(workdir, "no otel", digest, OFF_ENV, "bench.no_otel", control),
            "off": start_counted(workdir, "off", digest, OFF_ENV, None, control),
        }
        for counted in gateways.values():
            stack.callback(counted.server.stop)
        log(f"seeding {options.users} users into each...")
        ids = {
            name: seed_users(g.server.base_url, token, options.users)
            for name, g in gateways.items()
        }
        rows = []
        keys = tuple(options.scenarios)
        for scenario in _scenarios(ids["off"][0], seed_user_name(options.users // 2), keys):
            row = InstructionRow(scenario)
            for name in BUILDS:
                count = measure(gateways[name], token, scenario, ids[name], options)
                row.per_request[name] = count
                log(f"  {scenario.label:<32} {name:<8} {count:>12,.0f} instructions/request")
            rows.append(row)
    return InstructionReport(options, rows, code_revision(), version)


def format_instruction_report(report: InstructionReport) -> str:
    o = report.options
    lines = [
        "scim-gateway tracing off vs. no OpenTelemetry calls, in instructions per request "
        "(callgrind; all threads counted)",
        f"code: {report.revision}; {report.valgrind}; memory adapter, shipped defaults "
        f"(audit and access log on); {o.users} users; {o.requests} requests per scenario and "
        f"gateway, one at a time, after {o.warmup} warm-up requests",
        "",
    ]
    body = [
        [
            row.scenario.label,
            f"{row.per_request['no otel']:,.0f}",
            f"{row.per_request['off']:,.0f}",
            f"{row.ratio('no otel', 'off'):.3f}",
        ]
        for row in report.rows
    ]
    lines.append(_table(COLUMNS, body))
    lines += [
        "",
        "off/no-otel = instructions of the build without OpenTelemetry calls / instructions "
        "with tracing off (1.0 = off costs nothing).",
    ]
    lines += [f"note: {n}" for n in report.notes]
    problems = report.problems()
    if problems:
        lines += ["", "PROBLEMS:", *[f"  {p}" for p in problems]]
    return "\n".join(lines)


__all__ = [
    "CallgrindError",
    "InstructionOptions",
    "InstructionReport",
    "format_instruction_report",
    "run_instruction_bench",
]
