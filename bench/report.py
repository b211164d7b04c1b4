"""The printed result: a header saying how it was measured, the table, and any problems."""

from __future__ import annotations

import os
import platform
from importlib.metadata import PackageNotFoundError, version

from bench.core import BenchReport, Row


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


def _cells(row: Row) -> list[str]:
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
        f"{row.p50_ratio:.1f}",
        str(errors) if errors else "0",
    ]


def format_table(rows: list[Row]) -> str:
    body = [_cells(r) for r in rows]
    widths = [
        max(len(name), *(len(cells[i]) for cells in body)) if body else len(name)
        for i, (name, _) in enumerate(COLUMNS)
    ]

    def line(cells: list[str]) -> str:
        return "  ".join(
            f"{cell:{align}{width}}"
            for cell, (_, align), width in zip(cells, COLUMNS, widths, strict=True)
        ).rstrip()

    header = line([name for name, _ in COLUMNS])
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
    problems = report.problems()
    if problems:
        lines += ["", "!" * 78, "!!! ERRORS DURING THE BENCHMARK - THE NUMBERS ABOVE ARE SUSPECT"]
        lines += [f"!!! {p}" for p in problems]
        lines.append("!" * 78)
    return "\n".join(lines)
