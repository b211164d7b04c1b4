"""One benchmark run: start both servers, seed, then measure each scenario on both, alternating.

Per scenario, each target first gets a warm-up run (discarded), then
``rounds`` measured runs in ABBA order (gateway, baseline, baseline, gateway,
...), so slow drifts of a noisy machine fall on both sides alike. Each
target's runs are pooled (:mod:`bench.stats`); the per-round throughput
ratios are kept to show how much the machine wandered.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.load import Loader, PythonLoader, Target, WrkLoader, find_wrk
from bench.scenarios import SCENARIO_KEYS, Scenario, build_scenarios, seed_user_name
from bench.servers import (
    ROOT,
    auth_headers,
    capture_answers,
    count_users,
    make_token,
    seed_users,
    start_baseline,
    start_gateway,
)
from bench.stats import Pooled, RunResult, median

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class BenchOptions:
    duration: int = 5  #: measured seconds per scenario and target (split into rounds)
    connections: int = 16
    threads: int = 1  #: wrk threads; the Python loader always uses one process
    rounds: int = 0  #: alternating runs per target; 0 = one per second, at most 5
    warmup: int = 1  #: seconds of discarded load per scenario and target; 0 = none
    users: int = 1000  #: users seeded through the SCIM API before measuring
    scenarios: Sequence[str] = SCENARIO_KEYS
    loader: str = "auto"  #: "auto" (wrk if installed), "wrk" or "python"
    pin: bool = True  #: pin servers and load generator to separate cores

    def slices(self) -> list[int]:
        """The length in seconds of each measured run (whole seconds: wrk's resolution)."""
        duration = max(1, self.duration)
        rounds = self.rounds or min(duration, 5)
        rounds = max(1, min(rounds, duration))
        base, extra = divmod(duration, rounds)
        return [base + (1 if i < extra else 0) for i in range(rounds)]


@dataclass
class Row:
    scenario: Scenario
    gateway: Pooled = field(default_factory=Pooled)
    baseline: Pooled = field(default_factory=Pooled)
    warmup_problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Gateway throughput as a fraction of the baseline's."""
        return self.gateway.rps / self.baseline.rps if self.baseline.rps else 0.0

    @property
    def p50_ratio(self) -> float:
        """Gateway median latency over the baseline's (how many times slower)."""
        base = self.baseline.percentile(50)
        return self.gateway.percentile(50) / base if base else 0.0

    def median_round_ratio(self) -> float:
        """The median of the per-round ratios: robust to one round hit by a hiccup."""
        return median(self.round_ratios())

    def round_ratios(self) -> list[float]:
        return [
            g.rps / b.rps
            for g, b in zip(self.gateway.runs, self.baseline.runs, strict=False)
            if b.rps
        ]

    def problems(self) -> list[str]:
        """Everything that makes this row's numbers suspect: non-2xx answers, socket errors."""
        out = list(self.warmup_problems)
        for name, pooled in (("gateway", self.gateway), ("baseline", self.baseline)):
            out += describe_problems(self.scenario, name, pooled.runs)
        return out


def describe_problems(scenario: Scenario, target: str, runs: Sequence[RunResult]) -> list[str]:
    out = []
    unexpected = sum(r.unexpected for r in runs)
    if unexpected:
        first = next((r.bad_status for r in runs if r.bad_status), 0)
        out.append(
            f"{scenario.label} on {target}: {unexpected} response(s) not {scenario.status} "
            f"(first: HTTP {first})"
        )
    errors = {
        k: sum(r.errors.get(k, 0) for r in runs) for k in ("connect", "read", "write", "timeout")
    }
    if any(errors.values()):
        detail = ", ".join(f"{k} {v}" for k, v in errors.items() if v)
        out.append(f"{scenario.label} on {target}: socket errors: {detail}")
    if not any(r.requests for r in runs):
        out.append(f"{scenario.label} on {target}: no request completed")
    return out


def code_revision() -> str:
    """The git commit the servers ran, and whether gateway/ or adapters/ had local changes."""
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"

    def out(*args: str) -> str:
        proc = subprocess.run([git, "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    head = out("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    dirty = out("status", "--porcelain", "--", "gateway", "adapters", "pyproject.toml")
    return f"{head} + uncommitted changes in gateway/ or adapters/" if dirty else head


@dataclass
class BenchReport:
    options: BenchOptions
    loader: str  #: what generated the load
    fallback: bool  #: True when the Python loader was used
    pinning: str
    rows: list[Row]
    users_seeded: int
    users_after: int
    revision: str = ""
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [p for row in self.rows for p in row.problems()]


def choose_cpus(pin: bool) -> tuple[set[int] | None, set[int] | None, str]:
    """(server cores, load-generator cores, description).

    The servers (one process each, only one under load at a time) get the
    last available core; the load generator gets the others.
    """
    available = sorted(os.sched_getaffinity(0))
    if not pin:
        return None, None, "off (--no-pin)"
    if len(available) < 2:
        return None, None, f"off (only {len(available)} core available)"
    server, load = {available[-1]}, set(available[:-1])
    cores = ",".join(map(str, sorted(load)))
    return server, load, f"servers on core {available[-1]}, load generator on core(s) {cores}"


def make_loader(
    options: BenchOptions, cpus: set[int] | None, workdir: Path
) -> tuple[Loader, list[str]]:
    notes: list[str] = []
    wrk = find_wrk()
    if options.loader == "wrk" and wrk is None:
        raise RuntimeError("wrk is not installed (Debian/Ubuntu: apt-get install -y wrk)")
    if options.loader in ("auto", "wrk") and wrk is not None:
        threads = max(1, min(options.threads, options.connections))
        return WrkLoader(wrk, threads, options.connections, cpus, workdir), notes
    if options.loader == "auto":
        notes.append("wrk not found (apt-get install -y wrk); using the Python fallback loader")
    notes.append(
        "FALLBACK LOADER: the Python load generator saturates near a few thousand req/s, "
        "so fast targets (the baseline) are under-measured and ratios understate the "
        "gateway's overhead"
    )
    return PythonLoader(options.connections, cpus, workdir), notes


def run_bench(options: BenchOptions, log: Log = _stderr) -> BenchReport:
    """Run the whole benchmark and return its rows; every subprocess is stopped on return."""
    unknown = set(options.scenarios) - set(SCENARIO_KEYS)
    if unknown:
        raise ValueError(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    server_cpus, load_cpus, pinning = choose_cpus(options.pin)
    revision = code_revision()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scim-bench-")))
        loader, notes = make_loader(options, load_cpus, workdir)
        token, digest = make_token()

        log("starting the gateway (scim-gateway serve, memory adapter)...")
        gateway = start_gateway(workdir, digest, server_cpus)
        stack.callback(gateway.stop)
        log(f"seeding {options.users} users through the SCIM API...")
        ids = seed_users(gateway.base_url, token, max(1, options.users))
        scenarios = build_scenarios(ids[0], seed_user_name(len(ids) // 2))
        answers = capture_answers(gateway.base_url, token, scenarios, ids)

        log("starting the baseline (bare aiohttp, fixed bodies)...")
        baseline = start_baseline(workdir, answers, server_cpus)
        stack.callback(baseline.stop)

        headers = auth_headers(token)
        targets = {
            "gateway": Target("gateway", gateway.origin, headers, ids[:100]),
            "baseline": Target("baseline", baseline.origin, headers, ids[:100]),
        }
        slices = options.slices()
        rows: list[Row] = []
        for scenario in (s for s in scenarios if s.key in options.scenarios):
            rows.append(_measure(scenario, targets, loader, options.warmup, slices, log))
        users_after = count_users(gateway.base_url, token)

    if "post" in options.scenarios:
        notes.append(
            f"POST grew the gateway's store from {len(ids) + 1} to {users_after} users "
            "(the reads ran before, on the seeded store; PATCH ran after)"
        )
    return BenchReport(
        options=options,
        loader=loader.description,
        fallback=isinstance(loader, PythonLoader),
        pinning=pinning,
        rows=rows,
        users_seeded=len(ids),
        users_after=users_after,
        revision=revision,
        notes=notes,
    )


def _measure(
    scenario: Scenario,
    targets: dict[str, Target],
    loader: Loader,
    warmup: int,
    slices: Sequence[int],
    log: Log,
) -> Row:
    row = Row(scenario)
    pooled = {"gateway": row.gateway, "baseline": row.baseline}
    if warmup > 0:
        for name in ("gateway", "baseline"):
            result = loader.run(scenario, targets[name], warmup, "w")
            row.warmup_problems += [
                f"(warm-up) {p}" for p in describe_problems(scenario, name, [result])
            ]
    for i, seconds in enumerate(slices):
        order = ("gateway", "baseline") if i % 2 == 0 else ("baseline", "gateway")
        for name in order:
            result = loader.run(scenario, targets[name], seconds, f"r{i}")
            pooled[name].runs.append(result)
            bad = f", {result.unexpected} unexpected" if result.unexpected else ""
            log(
                f"  {scenario.label:<32} {name:<8} round {i + 1}/{len(slices)}: "
                f"{result.rps:9.0f} req/s{bad}"
            )
    return row


__all__ = ["BenchOptions", "BenchReport", "Row", "run_bench"]
