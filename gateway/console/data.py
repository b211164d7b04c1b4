"""What the console pages show, gathered from the running gateway and its state store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.app import BREAKERS, READY, STORE
from gateway.config import Settings
from gateway.http.views import SERVICES
from gateway.state.audit import chain_hash, public
from gateway.state.db import Row
from gateway.state.store import StateStore

#: The apps page looks for each app's last error among this many latest events.
RECENT = 10_000


@dataclass(frozen=True, slots=True)
class AppView:
    name: str
    adapter: str
    ready: bool
    breaker: str
    rate_limit: str
    queue: str
    guard: bool
    deprovision: str
    last_error: dict[str, Any] | None


def app_views(app: web.Application, settings: Settings, errors: dict[str, Row]) -> list[AppView]:
    views = []
    for name, runtime in app[SERVICES].items():
        config = settings.apps[name]
        breaker = app[BREAKERS].get(name)
        limit = config.rate_limit
        policy = config.deprovision
        deprovision: str = policy.mode
        if policy.delete_after_days is not None:
            deprovision += f", deleted after {policy.delete_after_days:g} days"
        views.append(
            AppView(
                name=name,
                adapter=config.adapter,
                ready=app[READY].get(name, False),
                breaker="off" if breaker is None else breaker.state,
                rate_limit="none" if limit is None else f"{limit.rate:g}/s, burst {limit.burst}",
                queue=f"{config.max_concurrency} at once, {config.max_queue} queued, "
                f"{config.call_timeout:g} s per call",
                guard=runtime.service.guard is not None,
                deprovision=deprovision,
                last_error=None if name not in errors else _error(errors[name]),
            )
        )
    return views


def _error(row: Row) -> dict[str, Any]:
    event = public(row)
    reason = [f"status {event['status']}"]
    if event["scim_type"]:
        reason.append(str(event["scim_type"]))
    if event["failed_step"]:
        reason.append(f"failed at step {event['failed_step']}")
    reason += [f"{k}: {v}" for k, v in sorted(event["extra"].items())]
    return {**event, "reason": "; ".join(reason)}


async def last_errors(app: web.Application) -> dict[str, Row]:
    """Each app's latest failed (or unknown) event, when there is an audit trail."""
    store = app.get(STORE)
    if store is None:
        return {}
    found: dict[str, Row] = {}
    async with store.db.transaction() as tx:
        top = await tx.fetchrow("SELECT MAX(id) AS id FROM audit_event")
        # Only the latest events: there is no index by app (it would cost every audit write),
        # and a page view must not scan a trail of millions.
        floor = (top["id"] or 0) - RECENT if top is not None else 0
        for name in app[SERVICES]:
            row = await tx.fetchrow(
                "SELECT * FROM audit_event WHERE id > ? AND app = ? "
                "AND outcome IN ('failed', 'unknown') ORDER BY id DESC LIMIT 1",
                floor,
                name,
            )
            if row is not None:
                found[name] = row
    return found


@dataclass(frozen=True, slots=True)
class ChainStatus:
    ok: bool
    lines: list[str]


async def event_detail(store: StateStore, event_id: int) -> tuple[dict[str, Any], ChainStatus]:
    """The event and where it stands in the hash chain (LookupError: no such event)."""
    async with store.db.transaction() as tx:
        row = await tx.fetchrow("SELECT * FROM audit_event WHERE id = ?", event_id)
        if row is None:
            raise LookupError(event_id)
        if row["seq"] is None:
            return public(row), ChainStatus(True, ["pending: not in the chain until it finishes"])
        before = await tx.fetchrow("SELECT hash FROM audit_event WHERE seq = ?", row["seq"] - 1)
        after = await tx.fetchrow("SELECT prev_hash FROM audit_event WHERE seq = ?", row["seq"] + 1)
    return public(row), _chain_status(row, before, after)


def _chain_status(row: Row, before: Row | None, after: Row | None) -> ChainStatus:
    lines, ok = [], True
    if chain_hash(row, row["prev_hash"]) == row["hash"]:
        lines.append("its content matches its hash")
    else:
        ok = False
        lines.append("its content does NOT match its hash: it was edited")
    if before is None:
        lines.append(f"no event at seq {row['seq'] - 1} (the start, or pruned behind a checkpoint)")
    elif before["hash"] == row["prev_hash"]:
        lines.append(f"it links to the event at seq {row['seq'] - 1}")
    else:
        ok = False
        lines.append(f"it does NOT link to the event at seq {row['seq'] - 1}")
    if after is None:
        lines.append("it is the last event of the chain")
    elif after["prev_hash"] == row["hash"]:
        lines.append(f"the event at seq {row['seq'] + 1} links to it")
    else:
        ok = False
        lines.append(f"the event at seq {row['seq'] + 1} does NOT link to it")
    return ChainStatus(ok, lines)
