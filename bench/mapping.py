"""``python -m bench mapping``: what a mapping costs per record, Jinja vs. compiled, in one run.

In process, no servers. Every shipped mapping directory (``mappings/*``) is
loaded twice: once as the gateway loads it, with expression templates compiled
to Python functions (:mod:`gateway.mapping.pyexpr`), and once with that
switched off (``sandbox._COMPILE_EXPRESSIONS``), every template rendered by
Jinja as before. For each resource type, ``from_legacy`` (legacy record ->
SCIM, on every resource the gateway returns) and ``to_legacy`` (SCIM -> legacy
record, on every write) are timed on the same input for both loads, in
alternating rounds (A B B A ...), by ``time.process_time`` over batches of
calls; a row gives the median µs per record of each and their ratio.

The input: Acme HR users are ``bench.rest.seed_account(5)`` with the ids and
timestamps Acme HR adds (the REST suite's GET by id); any other record is the
mapping's own to_legacy of a sample resource with every attribute set
(``context.sample_resource``), the same the start-up check renders. The
resource of ``to_legacy`` is that record's ``from_legacy``. Both loads must
give equal results, else the row is an error. Redmine's mappings read their
custom field ids from the environment; unset, 7 (users) and 8 (groups) stand in.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core import code_revision
from bench.report import _table, suspect
from bench.rest import seed_account
from gateway.mapping import sandbox
from gateway.mapping.context import sample_resource
from gateway.mapping.engine import MAPPINGS_DIR, TypeMapping, load_mapping

#: Environment a shipped mapping needs to load, when the bench's caller has not set it.
STAND_INS = {"REDMINE_USER_EXTERNAL_ID_FIELD": "7", "REDMINE_GROUP_EXTERNAL_ID_FIELD": "8"}
DIRECTIONS = ("from_legacy", "to_legacy")


@dataclass(frozen=True)
class MappingOptions:
    #: Alternating rounds per row (each measures both loads once).
    rounds: int = 7
    #: Least CPU time per batch, in seconds: the batch size is chosen to fill it.
    batch: float = 0.05
    mappings_dir: Path = MAPPINGS_DIR


@dataclass
class MappingRow:
    mapping: str
    resource_type: str
    direction: str
    fields: int
    compiled_fields: int
    jinja_us: list[float] = field(default_factory=list)
    compiled_us: list[float] = field(default_factory=list)
    error: str = ""

    @property
    def jinja(self) -> float:
        return statistics.median(self.jinja_us)

    @property
    def compiled(self) -> float:
        return statistics.median(self.compiled_us)

    @property
    def ratio(self) -> float:
        return self.jinja / self.compiled if self.compiled else 0.0


@dataclass
class MappingReport:
    options: MappingOptions
    rows: list[MappingRow]
    revision: str
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return [
            f"{r.mapping} {r.resource_type} {r.direction}: {r.error}" for r in self.rows if r.error
        ]


@contextlib.contextmanager
def jinja_only() -> Iterator[None]:
    """Mappings loaded inside render every template through Jinja."""
    before = sandbox._COMPILE_EXPRESSIONS
    sandbox._COMPILE_EXPRESSIONS = False
    try:
        yield
    finally:
        sandbox._COMPILE_EXPRESSIONS = before


@contextlib.contextmanager
def _stand_ins() -> Iterator[list[str]]:
    used = [name for name in STAND_INS if name not in os.environ]
    for name in used:
        os.environ[name] = STAND_INS[name]
    try:
        yield used
    finally:
        for name in used:
            os.environ.pop(name, None)


def sample_record(mapping_name: str, tm: TypeMapping) -> dict[str, Any]:
    """The legacy record a row times (see the module docstring)."""
    if mapping_name == "acme-hr" and tm.rtype.name == "User":
        record: dict[str, Any] = dict(seed_account(5))
        record.update(
            account_id="acc_000005",
            created_at="2026-01-05T09:30:00Z",
            updated_at="2026-01-06T10:00:00Z",
        )
        return record
    return tm.to_legacy(sample_resource(tm.rtype))


def _per_call_us(func: Callable[[Any], Any], arg: Any, calls: int) -> float:
    start = time.process_time()
    for _ in range(calls):
        func(arg)
    return (time.process_time() - start) / calls * 1e6


def _calls_for(func: Callable[[Any], Any], arg: Any, batch: float) -> int:
    calls = 16
    while True:
        start = time.process_time()
        for _ in range(calls):
            func(arg)
        if time.process_time() - start >= batch / 4 or calls >= 1 << 20:
            return max(calls * 4, 16)
        calls *= 2


def _time_row(
    row: MappingRow,
    jinja: Callable[[Any], Any],
    compiled: Callable[[Any], Any],
    arg: Any,
    options: MappingOptions,
) -> None:
    calls = _calls_for(compiled, arg, options.batch)
    for index in range(options.rounds):
        pair = [(jinja, row.jinja_us), (compiled, row.compiled_us)]
        for func, out in pair if index % 2 == 0 else pair[::-1]:  # A B, B A, ...
            out.append(_per_call_us(func, arg, calls))


def _fields(tm: TypeMapping, direction: str) -> tuple[int, int]:
    found = tm.from_legacy_fields if direction == "from_legacy" else tm.to_legacy_fields
    return len(found), sum(1 for f in found if f.template.evaluate is not None)


def run_mapping_bench(
    options: MappingOptions | None = None, log: Callable[[str], None] = lambda line: None
) -> MappingReport:
    options = options or MappingOptions()
    rows: list[MappingRow] = []
    notes: list[str] = []
    with _stand_ins() as used:
        if used:
            notes.append(f"stand-in environment: {', '.join(f'{n}={STAND_INS[n]}' for n in used)}")
        for directory in sorted(p for p in options.mappings_dir.iterdir() if p.is_dir()):
            compiled_mapping = load_mapping(directory)
            with jinja_only():
                jinja_mapping = load_mapping(directory)
            for type_name, tm in sorted(compiled_mapping.types.items()):
                plain = jinja_mapping.types[type_name]
                record = sample_record(directory.name, tm)
                resource = tm.from_legacy(record)
                inputs: Mapping[str, Any] = {"from_legacy": record, "to_legacy": resource}
                for direction in DIRECTIONS:
                    log(f"{directory.name} {type_name} {direction}")
                    total, compiled_count = _fields(tm, direction)
                    row = MappingRow(directory.name, type_name, direction, total, compiled_count)
                    rows.append(row)
                    fast = getattr(tm, direction)
                    slow = getattr(plain, direction)
                    arg = inputs[direction]
                    if fast(arg) != slow(arg):
                        row.error = "the compiled and the Jinja load give different results"
                        continue
                    _time_row(row, slow, fast, arg, options)
    return MappingReport(options, rows, code_revision(), notes)


COLUMNS = (
    ("mapping", "<"),
    ("type", "<"),
    ("direction", "<"),
    ("compiled", ">"),
    ("jinja µs", ">"),
    ("compiled µs", ">"),
    ("ratio", ">"),
    ("rounds: min-max ratio", ">"),
)


def _cells(row: MappingRow) -> list[str]:
    head = [row.mapping, row.resource_type, row.direction, f"{row.compiled_fields}/{row.fields}"]
    if row.error:
        return [*head, "-", "-", "ERROR", "-"]
    ratios = [j / c for j, c in zip(row.jinja_us, row.compiled_us, strict=True) if c]
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"
    return [*head, f"{row.jinja:.1f}", f"{row.compiled:.1f}", f"{row.ratio:.2f}", spread]


def format_mapping_report(report: MappingReport) -> str:
    o = report.options
    lines = [
        "scim-gateway mapping benchmark: TypeMapping.from_legacy/to_legacy per record, "
        "templates rendered by Jinja vs. compiled to Python functions",
        f"  timing:   CPU time (time.process_time), median of {o.rounds} alternating rounds "
        f"(A B B A ...), batches of >= {o.batch * 1000:.0f} ms",
        f"  software: Python {platform.python_version()}; {os.cpu_count()} CPUs; "
        f"code {report.revision}",
        "",
        _table(COLUMNS, [_cells(r) for r in report.rows]),
        "",
        "compiled = templates of the direction that run compiled / all of them; "
        "ratio = jinja µs / compiled µs.",
    ]
    lines += [f"note: {note}" for note in report.notes]
    lines += suspect(report.problems())
    return "\n".join(lines)
