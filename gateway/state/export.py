"""Audit events for people and tools: filters from text, JSON lines, CSV and a table.

Shared by ``scim-gateway audit list|export`` and the admin endpoint, so both
read filters and write formats the same way.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.state.audit import PUBLIC_NAMES, AuditLog, Filters

EXPORT_FORMATS = {"jsonl": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
FILTER_KEYS = ("app", "user", "operation", "outcome")


def parse_time(text: str) -> str:
    """An ISO date or date-time (naive means UTC) in the stored form."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date or time (2026-01-31T12:00:00Z)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def filters_from(values: Mapping[str, Any]) -> Filters:
    """Filters from query parameters or command-line options (absent or None: no filter)."""
    chosen = {key: values.get(key) or None for key in FILTER_KEYS}
    since, until = values.get("since"), values.get("until")
    return Filters(
        **chosen,
        since=parse_time(since) if since else None,
        until=parse_time(until) if until else None,
    )


def jsonl(event: Mapping[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"


#: A cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def safe_cell(value: Any) -> Any:
    """``value``, with a leading ``'`` when a spreadsheet would take it for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_line(values: list[Any]) -> str:
    out = io.StringIO()
    # CRLF (RFC 4180): the writer then quotes a cell holding CR as well as LF, so no
    # value can start a row of its own in a spreadsheet.
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(v) for v in values])
    return out.getvalue()


def csv_row(event: Mapping[str, Any]) -> str:
    cells = []
    for name in PUBLIC_NAMES:
        value = event[name]
        if name == "changed":
            value = " ".join(value)
        elif name in ("extra", "values"):
            value = json.dumps(value, sort_keys=True) if value else ""
        cells.append("" if value is None else value)
    return csv_line(cells)


async def export_lines(log: AuditLog, filters: Filters, form: str) -> AsyncIterator[str]:
    if form == "csv":
        yield csv_line(list(PUBLIC_NAMES))
    async for event in log.iterate(filters):
        yield csv_row(event) if form == "csv" else jsonl(event)


TABLE = ("time", "app", "client", "operation", "resource_type", "name", "outcome", "status")


def table(events: list[dict[str, Any]]) -> str:
    """A plain text table of the most telling columns."""
    rows = [list(TABLE)] + [["" if e[c] is None else str(e[c]) for c in TABLE] for e in events]
    widths = [max(len(r[i]) for r in rows) for i in range(len(TABLE))]
    return "".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n"
        for r in rows
    )
