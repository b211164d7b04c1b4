"""The printed result: a header saying how it was measured, the table, and any problems."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from bench.core import BenchReport, Row
from bench.rest import RestReport


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def _ms(microseconds: float) -> str:
    return f"{microseconds / 1000:.2f}"


def _runs(slices: list[int]) -> str:
    if len(slices) == 1:
        return "in one run each (gateway, then baseline)"
    lengths = "+".join(map(str, slices))
    return f"in {len(slices)} alternating runs of {lengths} s (ABBA: G B B G ...)"


def _ratio_rounds(row: Row) -> str:
    ratios = row.round_ratios()
    if len(ratios) < 2:
        return "-"
    return f"{row.median_round_ratio():.2f} ({min(ratios):.2f}-{max(ratios):.2f})"


COLUMNS = (
    ("scenario", "<"),
    ("gw req/s", ">"),
    ("base req/s", ">"),
    ("ratio", ">"),
    ("rounds: med (min-max)", ">"),
    ("gw p50 ms", ">"),
    ("gw p99 ms", ">"),
    ("base p50 ms", ">"),
    ("base p99 ms", ">"),
    ("p50 x", ">"),
    ("errors", ">"),
)


def row_cells(row: Row) -> list[str]:
    errors = (
        row.gateway.unexpected
        + row.baseline.unexpected
        + row.gateway.socket_errors
        + row.baseline.socket_errors
    )
    return [
        row.scenario.label,
        f"{row.gateway.rps:.0f}",
        f"{row.baseline.rps:.0f}",
        f"{row.ratio:.3f}",
        _ratio_rounds(row),
        _ms(row.gateway.percentile(50)),
        _ms(row.gateway.percentile(99)),
        _ms(row.baseline.percentile(50)),
        _ms(row.baseline.percentile(99)),
        f"{row.p50_ratio:.2f}",
        str(errors),
    ]


def pair_columns(base: str, other: str) -> tuple[tuple[str, str], ...]:
    """The columns of a suite comparing two variants of the gateway, ``other`` (a row's
    gateway side) against ``base`` (its baseline side): tracing on/off, workers."""
    return (
        ("scenario", "<"),
        (f"{base} req/s", ">"),
        (f"{other} req/s", ">"),
        (f"{other}/{base}", ">"),
        ("rounds: med (min-max)", ">"),
        (f"{base} p50 ms", ">"),
        (f"{other} p50 ms", ">"),
        (f"{base} p99 ms", ">"),
        (f"{other} p99 ms", ">"),
        ("p50 x", ">"),
        ("errors", ">"),
    )


def pair_cells(row: Row) -> list[str]:
    """A row in :func:`pair_columns`' order."""
    other, base = row.gateway, row.baseline
    errors = other.unexpected + base.unexpected + other.socket_errors + base.socket_errors
    return [
        row.scenario.label,
        f"{base.rps:.0f}",
        f"{other.rps:.0f}",
        f"{row.ratio:.3f}",
        _ratio_rounds(row),
        _ms(base.percentile(50)),
        _ms(other.percentile(50)),
        _ms(base.percentile(99)),
        _ms(other.percentile(99)),
        f"{row.p50_ratio:.2f}",
        str(errors),
    ]


def format_table(rows: list[Row]) -> str:
    return _table(COLUMNS, [row_cells(r) for r in rows])


def suspect(problems: Sequence[str]) -> list[str]:
    """The lines that mark a report's numbers as suspect, one per problem; none without."""
    if not problems:
        return []
    return [
        "",
        "!" * 78,
        "!!! ERRORS DURING THE BENCHMARK - THE NUMBERS ABOVE ARE SUSPECT",
        *(f"!!! {p}" for p in problems),
        "!" * 78,
    ]


def _table(columns: tuple[tuple[str, str], ...], body: list[list[str]]) -> str:
    widths = [
        max(len(name), *(len(cells[i]) for cells in body)) if body else len(name)
        for i, (name, _) in enumerate(columns)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, columns, widths, strict=True)
        ).rstrip()

    header = line([name for name, _ in columns])
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([header, rule, *(line(cells) for cells in body)])


def format_report(report: BenchReport) -> str:
    o = report.options
    slices = o.slices()
    lines = [
        "scim-gateway benchmark: gateway (scim-gateway serve, memory adapter) vs. baseline "
        "(bare aiohttp, same bodies)",
        f"  loader:   {report.loader}",
        f"  timing:   {sum(slices)} s measured per scenario and target, {_runs(slices)}, "
        f"after {o.warmup} s of discarded warm-up each",
        f"  pinning:  {report.pinning}; each server is one process, one event loop",
        f"  data:     {report.users_seeded} users seeded through the SCIM API; loopback "
        f"127.0.0.1; bearer token on every request",
        f"  software: Python {platform.python_version()}, aiohttp {_version('aiohttp')}, "
        f"orjson {_version('orjson')}; {os.cpu_count()} CPUs; code {report.revision}",
        "",
        format_table(report.rows),
        "",
        "ratio = gateway req/s / baseline req/s over all rounds (1.0 = no gateway overhead); "
        "rounds = median and range",
        "of the ratio per pair of adjacent runs (wide = noisy machine); p50 x = gateway p50 / "
        "baseline p50;",
        "latencies are pooled over the rounds; errors = responses with an unexpected (non-2xx) "
        "status + socket errors.",
    ]
    for note in report.notes:
        lines.append(f"note: {note}")
    lines += suspect(report.problems())
    return "\n".join(lines)


# -- the REST suite ------------------------------------------------------------------------

REST_COLUMNS = (
    ("scenario", "<"),
    ("gw req/s", ">"),
    ("proxy req/s", ">"),
    ("ratio", ">"),
    ("rounds: med (min-max)", ">"),
    ("gw p50 ms", ">"),
    ("gw p99 ms", ">"),
    ("px p50 ms", ">"),
    ("px p99 ms", ">"),
    ("p50 x", ">"),
    ("gw cpu us", ">"),
    ("px cpu us", ">"),
    ("cpu x", ">"),
    ("acme cpu us gw/px", ">"),
    ("errors", ">"),
)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _cpu_ratio(report: RestReport, row: Row) -> float | None:
    gw = report.cpu_of(row, "gateway").per_request_us("server")
    px = report.cpu_of(row, "baseline").per_request_us("server")
    return gw / px if gw is not None and px else None


def _rest_cells(report: RestReport, row: Row) -> list[str]:
    gw, px = report.cpu_of(row, "gateway"), report.cpu_of(row, "baseline")
    cpu_x = _cpu_ratio(report, row)
    acme = f"{_us(gw.per_request_us('legacy'))}/{_us(px.per_request_us('legacy'))}"
    cells = row_cells(row)
    return [
        *cells[:10],
        _us(gw.per_request_us("server")),
        _us(px.per_request_us("server")),
        "-" if cpu_x is None else f"{cpu_x:.2f}",
        acme,
        cells[10],
    ]


def format_rest_table(report: RestReport, rows: list[Row] | None = None) -> str:
    chosen = report.rows if rows is None else rows
    return _table(REST_COLUMNS, [_rest_cells(report, r) for r in chosen])


def _closing_note(report: RestReport) -> str:
    if not report.rows:
        return "closing note: no scenario was measured"
    ratios = ", ".join(f"{r.scenario.label} {r.ratio:.2f}" for r in report.rows)
    parts = [f"closing note: gateway (rest adapter)/proxy throughput ratio: {ratios}"]
    if report.memory_rows:
        memory = ", ".join(f"{r.scenario.label} {r.ratio:.2f}" for r in report.memory_rows)
        parts.append(f"gateway (memory adapter)/proxy: {memory};")
    cpu = [(r, _cpu_ratio(report, r)) for r in report.rows]
    if all(x is not None for _, x in cpu):
        times = ", ".join(f"{r.scenario.key} {x:.2f}x" for r, x in cpu)
        parts.append(
            f"(Acme HR's own work included on both sides); the gateway process alone spends "
            f"{times} the proxy's CPU per request"
        )
    return " ".join(parts) + "."


def format_rest_report(report: RestReport) -> str:
    o = report.options
    slices = o.slices()
    lines = [
        "scim-gateway REST benchmark: gateway (scim-gateway serve, rest adapter, "
        "mappings/acme-hr) vs. proxy (bench.proxy: bare aiohttp, hand-written translation), "
        "both in front of Acme HR",
        "  gateway:  the shipped defaults: audit trail on (SQLite beside the config), JSON access "
        "log on (log_level INFO), tracing off, one worker",
        f"  loader:   {report.loader}",
        f"  timing:   {sum(slices)} s measured per scenario and target, {_runs(slices)}, "
        f"after {o.warmup} s of discarded warm-up each",
        f"  pinning:  {report.pinning}; each server is one process, one event loop",
        f"  data:     {report.accounts_seeded} Acme HR accounts (SQLite :memory:) seeded through "
        "its API; loopback 127.0.0.1; bearer token on every request",
        f"  check:    {report.check.summary()}",
        f"  software: Python {platform.python_version()}, aiohttp {_version('aiohttp')}, "
        f"orjson {_version('orjson')}, Jinja2 {_version('jinja2')}; {os.cpu_count()} CPUs; "
        f"code {report.revision}",
        "",
        format_rest_table(report),
        "",
        "ratio = gateway req/s / proxy req/s over all rounds (1.0 = no gateway overhead); "
        "rounds = median and range of",
        "the ratio per pair of adjacent runs; p50 x = gateway p50 / proxy p50; cpu us = CPU "
        "microseconds per request of the",
        "server process alone (from /proc, measured runs only), cpu x = gateway / proxy; acme "
        "cpu us = Acme HR's CPU per request",
        "while serving the gateway / the proxy (the same calls; lower beside the faster proxy, "
        "as each wake-up serves more requests);",
        "errors = unexpected statuses + socket errors.",
    ]
    if report.memory_rows:
        lines += [
            "",
            "The gateway on the memory adapter (no legacy app behind it; shipped defaults: audit "
            "and access log on) vs. the same proxy (which still calls Acme HR):",
            "",
            format_rest_table(report, report.memory_rows),
        ]
    lines += [f"note: {note}" for note in report.notes]
    lines += suspect(report.problems())
    lines += ["", _closing_note(report)]
    return "\n".join(lines)
