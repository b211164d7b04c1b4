"""``python -m bench tracing``: what tracing costs a request, in one run.

Three ``scim-gateway serve`` processes on the memory adapter, identical but for
their environment (metrics and the access line are on in all three):

* off: tracing not configured (``OTEL_SDK_DISABLED=true`` besides), the shipped
  default: the gateway makes no OpenTelemetry call on the request path;
* on: ``OTEL_TRACES_SAMPLER=parentbased_traceidratio`` sampling ``--sampling``
  of the requests (10 %; 1 means always), spans batched (the SDK's default
  batch processor settings) and exported over OTLP/HTTP to
  :mod:`bench.otlp_sink`, a local receiver that decodes each export as a
  collector would. It runs on the load generator's core, as a collector would
  run on another machine;
* no OTel: :mod:`bench.no_otel`, the gateway with its span helpers replaced by
  bare no-ops, the baseline that "off" is held against.

All are seeded alike and get the same scenarios. :func:`bench.core._measure`
ABBA-alternates two of them per row: on vs. off, then off vs. no OTel. GET by
id rotates over each server's own seeded ids. The report gives req/s, p50/p99
and the ratio per scenario, and how many spans reached the receiver (the "on"
server is stopped first, which flushes its queue).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import sys
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.core import BenchOptions, Row, _measure, choose_cpus, code_revision, make_loader
from bench.load import PythonLoader, Target
from bench.report import _runs, _table, pair_cells, pair_columns, suspect
from bench.scenarios import SCENARIO_KEYS, Scenario, build_scenarios, seed_user_name
from bench.servers import (
    Server,
    _start,
    auth_headers,
    make_token,
    seed_users,
    server_env,
    start_gateway,
    write_gateway_config,
)

Log = Callable[[str], None]
OFF_ENV = {"OTEL_SDK_DISABLED": "true"}


def on_env(sink: Server, sampling: float = 1.0) -> dict[str, str]:
    sampler = (
        {"OTEL_TRACES_SAMPLER": "always_on"}
        if sampling >= 1
        else {
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": f"{sampling:g}",
        }
    )
    return {
        "OTEL_SDK_DISABLED": "false",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.origin,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        **sampler,
        "OTEL_METRICS_EXPORTER": "none",  # traces alone: the cost measured is tracing's
        "OTEL_SERVICE_NAME": "scim-gateway-bench",
    }


@dataclass
class TracingReport:
    options: BenchOptions
    loader: str
    fallback: bool
    pinning: str
    rows: list[Row]
    users_seeded: int
    #: off ("gateway" side) vs. the build without OpenTelemetry calls ("baseline").
    bare_rows: list[Row] = field(default_factory=list)
    sampling: float = 1.0
    spans_received: int = 0
    exports: int = 0
    requests_on: int = 0  #: every request the tracing-on server answered (seeding included)
    revision: str = ""
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        out = [p for row in (*self.rows, *self.bare_rows) for p in row.problems()]
        if self.requests_on and not self.spans_received:
            out.append("no span reached the OTLP receiver: tracing was not on")
        return out


def _scenarios(first_id: str, filter_name: str, keys: tuple[str, ...]) -> list[Scenario]:
    """The memory suite's scenarios; GET by id rotates over each target's own ids."""
    out = []
    for scenario in build_scenarios(first_id, filter_name):
        if scenario.key == "get":
            scenario = dataclasses.replace(scenario, path="/Users/{id}")
        if scenario.key in keys:
            out.append(scenario)
    return out


def _sink_stats(sink: Server) -> dict[str, int]:
    with urllib.request.urlopen(sink.origin + "/stats", timeout=5) as resp:
        data: dict[str, int] = json.loads(resp.read())
        return data


def start_no_otel(workdir: Path, digest: str, cpus: set[int] | None) -> Server:
    """The gateway through :mod:`bench.no_otel` (its span helpers cut out)."""

    def cmd(port: int) -> list[str]:
        config = write_gateway_config(workdir, digest, port)
        return [sys.executable, "-m", "bench.no_otel", "serve", "--config", str(config)]

    return _start("gateway-no-otel", cmd, "/readyz", workdir, cpus, env={**server_env(), **OFF_ENV})


def run_tracing_bench(options: BenchOptions, log: Log, sampling: float = 0.1) -> TracingReport:
    server_cpus, load_cpus, pinning = choose_cpus(options.pin)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scim-trace-")))
        loader, notes = make_loader(options, load_cpus, workdir)
        token, digest = make_token()
        log("starting the OTLP receiver (bench.otlp_sink)...")

        def sink_cmd(port: int) -> list[str]:
            return [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)]

        sink = _start("otlp-sink", sink_cmd, "/stats", workdir, load_cpus)
        stack.callback(sink.stop)
        log("starting three gateways (memory adapter): tracing off, on, no OpenTelemetry...")
        off_dir, on_dir, bare_dir = workdir / "off", workdir / "on", workdir / "bare"
        for where in (off_dir, on_dir, bare_dir):
            where.mkdir()
        off = start_gateway(off_dir, digest, server_cpus, OFF_ENV, "gateway-off")
        stack.callback(off.stop)
        on = start_gateway(on_dir, digest, server_cpus, on_env(sink, sampling), "gateway-on")
        stack.callback(on.stop)
        bare = start_no_otel(bare_dir, digest, server_cpus)
        stack.callback(bare.stop)
        users = max(1, options.users)
        log(f"seeding {users} users into each...")
        ids = {
            "on": seed_users(on.base_url, token, users),
            "off": seed_users(off.base_url, token, users),
            "bare": seed_users(bare.base_url, token, users),
        }
        keys = tuple(options.scenarios)
        scenarios = _scenarios(ids["on"][0], seed_user_name(users // 2), keys)
        headers = auth_headers(token)
        targets = {
            "gateway": Target("tracing on", on.origin, headers, ids["on"][:100]),
            "baseline": Target("tracing off", off.origin, headers, ids["off"][:100]),
        }
        log("measuring (in the lines below: gateway = tracing on, baseline = tracing off)")
        rows = [
            _measure(s, targets, loader, options.warmup, options.slices(), log) for s in scenarios
        ]
        bare_targets = {
            "gateway": Target("tracing off", off.origin, headers, ids["off"][:100]),
            "baseline": Target("no otel", bare.origin, headers, ids["bare"][:100]),
        }
        log("measuring (in the lines below: gateway = tracing off, baseline = no OpenTelemetry)")
        bare_rows = [
            _measure(s, bare_targets, loader, options.warmup, options.slices(), log)
            for s in scenarios
        ]
        on.stop()  # SIGTERM: the gateway flushes its span queue before it exits
        stats = _sink_stats(sink)
    measured = sum(row.gateway.requests for row in rows)
    report = TracingReport(
        options=options,
        loader=loader.description,
        fallback=isinstance(loader, PythonLoader),
        pinning=pinning,
        rows=rows,
        users_seeded=users,
        bare_rows=bare_rows,
        sampling=sampling,
        spans_received=stats["spans"],
        exports=stats["exports"],
        requests_on=measured + users,
        revision=code_revision(),
        notes=notes,
    )
    return report


def format_tracing_report(report: TracingReport) -> str:
    o = report.options
    slices = o.slices()
    per_request = report.spans_received / report.requests_on if report.requests_on else 0.0
    sampled = "always" if report.sampling >= 1 else f"{report.sampling:.0%} of requests"
    lines = [
        "scim-gateway tracing cost: the same gateway (memory adapter) with tracing on "
        f"(sampling {sampled}, batch OTLP/HTTP export to a local receiver) vs. off (not "
        "configured), and off vs. a build without OpenTelemetry calls (bench.no_otel)",
        f"  loader:   {report.loader}",
        f"  timing:   {sum(slices)} s measured per scenario and side, {_runs(slices)}, "
        f"after {o.warmup} s of discarded warm-up each",
        f"  pinning:  {report.pinning}; the OTLP receiver shares the load generator's core(s)",
        f"  data:     {report.users_seeded} users seeded into each gateway",
        f"  software: Python {platform.python_version()}; code {report.revision}",
        "",
        _table(pair_columns("off", "on"), [pair_cells(r) for r in report.rows]),
        "",
        "on/off = req/s with tracing on / req/s with tracing off (1.0 = tracing is free); "
        "p50 x = on p50 / off p50.",
        "",
        _table(pair_columns("no-otel", "off"), [pair_cells(r) for r in report.bare_rows]),
        "",
        "off/no-otel = req/s with tracing off / req/s of the build without OpenTelemetry "
        "calls (1.0 = off costs nothing).",
        f"spans received by the OTLP receiver: {report.spans_received} in {report.exports} "
        f"exports, {per_request:.2f} per request answered with tracing on "
        f"({report.requests_on}, seeding and measured runs; warm-ups not counted)",
    ]
    for row in report.rows:
        lines.append(
            f"note: {row.scenario.label}: tracing on serves {row.ratio:.2f}x the requests per "
            f"second of tracing off ({(1 - row.ratio) * 100:+.1f}% cost)"
        )
    for row in report.bare_rows:
        lines.append(
            f"note: {row.scenario.label}: tracing off serves {row.ratio:.2f}x the requests per "
            f"second of the build without OpenTelemetry calls ({(1 - row.ratio) * 100:+.1f}% cost)"
        )
    lines += [f"note: {note}" for note in report.notes]
    lines += suspect(report.problems())
    return "\n".join(lines)


__all__ = ["SCENARIO_KEYS", "TracingReport", "format_tracing_report", "run_tracing_bench"]
