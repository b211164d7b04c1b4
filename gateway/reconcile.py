"""Reconciliation and the access review: an app's accounts compared with the ledger.

``reconcile`` reads the app through its adapter one page at a time and sorts what
differs from the account ledger (gateway/state/ledger.py) into three kinds:

* orphan: in the app, but never provisioned through the gateway (or deleted by it);
* drift: provisioned here, and changed in the app since the gateway last wrote it
  (its fingerprint differs);
* missing: provisioned here, still live in the ledger, and gone from the app.

Pages are read by id (``id gt`` the last one, sorted by id) where the adapter can
filter and sort so, else by offset. Memory stays bounded by one page: the run's
position, the ledger accounts it has seen and its findings are rows in the state
store (``reconcile_*`` tables), so a run that stops can be resumed where it stopped,
and "missing" is one query at the end. The access review walks the app the same way
and adds the ledger's who and when.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.scim.filter import bind_filter, parse_filter
from gateway.sdk import Query
from gateway.service import ScimService
from gateway.state.db import Row
from gateway.state.ledger import accounts, fingerprint
from gateway.state.store import StateStore, iso

KINDS = ("orphan", "drift", "missing")
#: Runs kept per app (their findings stay readable in the console and for --resume).
KEEP_RUNS = 5
FINDING_FIELDS = ("kind", "resource_type", "id", "name", "detail")
REVIEW_FIELDS = (
    "resource_type",
    "id",
    "name",
    "active",
    "groups",
    "state",
    "provisioned_by",
    "created",
    "last_change",
    "changed_by",
)
#: Progress callbacks get (accounts read, total the app reported).
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    resource_type: str
    id: str
    name: str | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FINDING_FIELDS}


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: str
    app: str
    counts: dict[str, int]
    read: int

    @property
    def clean(self) -> bool:
        return not any(self.counts.values())


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a walk through an app stands: accounts read, and the last id (keyset paging)."""

    position: int = 0
    last_id: str | None = None


def keyset(service: ScimService, resource_type: str) -> bool:
    """Whether the adapter can page by ``id gt <last>`` sorted by id: every page then costs
    the same, where an offset costs more the deeper it goes (1M rows: 1 s a page)."""
    caps = service.caps
    return caps.sort and caps.can_filter(resource_type, "id", "gt")


async def pages(
    service: ScimService, resource_type: str, start: Mark, page: int
) -> AsyncIterator[tuple[Mark, int, list[dict[str, Any]]]]:
    """(where the walk stands after the page, total, the page as SCIM resources)."""
    rtype = service.types[resource_type]
    size = min(page, service.caps.max_page_size)
    by_id = keyset(service, resource_type)
    mark = start
    while True:
        if by_id:
            node = None
            if mark.last_id is not None:
                node = bind_filter(parse_filter(f"id gt {json.dumps(mark.last_id)}"), rtype)
            query = Query(resource_type, node, "id", False, 1, size)
        else:
            query = Query(resource_type, None, None, False, mark.position + 1, size)
        result = await service.adapter.search(query)
        resources = [service.to_scim(rtype, r, "") for r in result.records]
        # By id, the total counts what is left from this page on.
        total = mark.position + result.total if by_id else result.total
        last = resources[-1]["id"] if resources else mark.last_id
        mark = Mark(mark.position + len(resources), last)
        yield mark, total, resources
        if not resources or mark.position >= total:
            return


# -- reconcile ------------------------------------------------------------------------------


class Reconciler:
    def __init__(self, service: ScimService, store: StateStore, *, page: int = 500) -> None:
        self.service = service
        self.store = store
        self.page = page
        self.app = service.app

    def resource_types(self) -> list[str]:
        return [name for name in ("User", "Group") if name in self.service.types]

    async def run(
        self,
        *,
        resume: bool = False,
        progress: Progress | None = None,
        run_id: str | None = None,
    ) -> RunResult:
        """Walk the app and record the findings; ``run_id`` (from :meth:`start`) or
        ``resume`` go on with a run, else a new one starts."""
        if run_id is None and resume:
            run_id = await self._resumable()
        if run_id is None:
            run_id = await self.start()
        read = 0
        for rtype in self.resource_types():
            read += await self._walk(run_id, rtype, progress)
        await self._missing(run_id)
        async with self.store.db.transaction() as tx:
            await tx.execute("UPDATE reconcile_run SET done = 1 WHERE run_id = ?", run_id)
        return RunResult(run_id, self.app, await self._counts(run_id), read)

    async def start(self) -> str:
        """Record a new run; its id."""
        run_id = uuid.uuid4().hex
        async with self.store.db.transaction() as tx:
            await self._forget_old_runs(tx)
            await tx.execute(
                "INSERT INTO reconcile_run (run_id, app, started, resource_type, position, done) "
                "VALUES (?, ?, ?, ?, 0, 0)",
                run_id,
                self.app,
                iso(time.time()),
                self.resource_types()[0],
            )
        return run_id

    async def _forget_old_runs(self, tx: Any) -> None:
        """Keep the app's latest KEEP_RUNS runs; older ones' rows go."""
        rows = await tx.fetch(
            "SELECT run_id FROM reconcile_run WHERE app = ? ORDER BY started DESC", self.app
        )
        for row in rows[KEEP_RUNS - 1 :]:
            for table in ("reconcile_seen", "reconcile_finding", "reconcile_run"):
                await tx.execute(f"DELETE FROM {table} WHERE run_id = ?", row["run_id"])

    async def _resumable(self) -> str | None:
        async with self.store.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT run_id FROM reconcile_run WHERE app = ? AND done = 0 "
                "ORDER BY started DESC LIMIT 1",
                self.app,
            )
        return None if row is None else str(row["run_id"])

    async def _position(self, run_id: str, rtype: str) -> Mark | None:
        """Where this run stands in ``rtype``; None when that type is already done."""
        async with self.store.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT resource_type, position, last_id FROM reconcile_run WHERE run_id = ?",
                run_id,
            )
        assert row is not None
        order = self.resource_types()
        if order.index(row["resource_type"]) > order.index(rtype):
            return None
        if row["resource_type"] != rtype:
            return Mark()
        return Mark(int(row["position"]), row["last_id"])

    async def _walk(self, run_id: str, rtype: str, progress: Progress | None) -> int:
        start = await self._position(run_id, rtype)
        if start is None:
            return 0
        read = 0
        async for mark, total, resources in pages(self.service, rtype, start, self.page):
            ledger = await accounts(self.store, self.app, rtype, [r["id"] for r in resources])
            findings = [f for r in resources if (f := _compare(rtype, r, ledger.get(r["id"])))]
            await self._save_page(run_id, rtype, mark, total, list(ledger), findings)
            read += len(resources)
            if progress is not None:
                progress(mark.position, total)
        return read

    async def _save_page(
        self,
        run_id: str,
        rtype: str,
        mark: Mark,
        total: int,
        seen: list[str],
        findings: list[Finding],
    ) -> None:
        """One transaction: the page's findings and seen accounts, and the new position."""
        async with self.store.db.transaction() as tx:
            await tx.executemany(
                "INSERT INTO reconcile_seen (run_id, resource_type, scim_id) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [(run_id, rtype, scim_id) for scim_id in seen],
            )
            await _insert_findings(tx, run_id, findings)
            await tx.execute(
                "UPDATE reconcile_run SET resource_type = ?, position = ?, last_id = ?, "
                "total = ? WHERE run_id = ?",
                rtype,
                mark.position,
                mark.last_id,
                total,
                run_id,
            )

    async def _missing(self, run_id: str) -> None:
        """Live ledger accounts this run never saw in the app."""
        async with self.store.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT a.resource_type, a.scim_id, a.name, a.changed FROM account a "
                "WHERE a.app = ? AND a.state <> 'deleted' AND NOT EXISTS (SELECT 1 FROM "
                "reconcile_seen s WHERE s.run_id = ? AND s.resource_type = a.resource_type "
                "AND s.scim_id = a.scim_id)",
                self.app,
                run_id,
            )
            found = [
                Finding(
                    "missing",
                    r["resource_type"],
                    r["scim_id"],
                    r["name"],
                    f"provisioned here (last write {r['changed']}), not in the app",
                )
                for r in rows
            ]
            await _insert_findings(tx, run_id, found)

    async def _counts(self, run_id: str) -> dict[str, int]:
        async with self.store.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT kind, COUNT(*) AS n FROM reconcile_finding WHERE run_id = ? GROUP BY kind",
                run_id,
            )
        counts = dict.fromkeys(KINDS, 0)
        counts.update({r["kind"]: int(r["n"]) for r in rows})
        return counts

    async def findings(self, run_id: str, batch: int = 1000) -> AsyncIterator[Finding]:
        """The run's findings, by kind and id, a batch at a time (keyset paging)."""
        last = ("", "", "")
        while True:
            async with self.store.db.transaction() as tx:
                # A row-value comparison: both backends walk the primary key with it.
                rows = await tx.fetch(
                    "SELECT * FROM reconcile_finding WHERE run_id = ? AND "
                    "(kind, resource_type, scim_id) > (?, ?, ?) "
                    "ORDER BY kind, resource_type, scim_id LIMIT ?",
                    run_id,
                    *last,
                    batch,
                )
            for r in rows:
                yield Finding(r["kind"], r["resource_type"], r["scim_id"], r["name"], r["detail"])
            if len(rows) < batch:
                return
            last = (rows[-1]["kind"], rows[-1]["resource_type"], rows[-1]["scim_id"])


async def _insert_findings(tx: Any, run_id: str, findings: Iterable[Finding]) -> None:
    rows = [(run_id, f.kind, f.resource_type, f.id, f.name, f.detail) for f in findings]
    if rows:
        await tx.executemany(
            "INSERT INTO reconcile_finding (run_id, kind, resource_type, scim_id, name, detail) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )


def _name(resource: Mapping[str, Any]) -> str | None:
    name = resource.get("userName") or resource.get("displayName")
    return name if isinstance(name, str) else None


def _compare(rtype: str, resource: Mapping[str, Any], row: Row | None) -> Finding | None:
    name = _name(resource)
    if row is None:
        return Finding("orphan", rtype, resource["id"], name, "in the app, never provisioned here")
    if row["state"] == "deleted":
        return Finding("orphan", rtype, resource["id"], name, "deleted here, still in the app")
    if row["fingerprint"] is not None and row["fingerprint"] != fingerprint(resource):
        detail = f"changed in the app since the last write here ({row['changed']})"
        return Finding("drift", rtype, resource["id"], name, detail)
    return None


# -- the access review ------------------------------------------------------------------------


async def review(
    service: ScimService, store: StateStore | None, *, page: int = 500
) -> AsyncIterator[dict[str, Any]]:
    """Every account of the app (users, then groups) with its groups and the ledger's record."""
    groups = await _memberships(service, page) if "Group" in service.types else {}
    for rtype in ("User", "Group"):
        if rtype not in service.types:
            continue
        async for _, _, resources in pages(service, rtype, Mark(), page):
            ids = [r["id"] for r in resources]
            ledger = await accounts(store, service.app, rtype, ids) if store is not None else {}
            for resource in resources:
                yield _review_row(rtype, resource, ledger.get(resource["id"]), groups)


async def _memberships(service: ScimService, page: int) -> dict[str, list[str]]:
    """Member id -> group names (held in memory: one entry per membership)."""
    found: dict[str, list[str]] = {}
    async for _, _, resources in pages(service, "Group", Mark(), page):
        for group in resources:
            members = group.get("members") or []
            if not members:  # list answers may leave members out: read the group
                full = await service.adapter.get("Group", group["id"])
                members = service.to_scim(service.types["Group"], full, "").get("members") or []
            for member in members:
                found.setdefault(str(member.get("value")), []).append(_name(group) or group["id"])
    return found


def _review_row(
    rtype: str, resource: Mapping[str, Any], row: Row | None, groups: Mapping[str, list[str]]
) -> dict[str, Any]:
    active = resource.get("active")
    return {
        "resource_type": rtype,
        "id": resource["id"],
        "name": _name(resource),
        "active": active if rtype == "User" else None,
        "groups": sorted(groups.get(resource["id"], [])) if rtype == "User" else [],
        "state": "not provisioned here" if row is None else row["state"],
        "provisioned_by": None if row is None else row["provisioned_by"],
        "created": None if row is None else row["created"],
        "last_change": None if row is None else row["changed"],
        "changed_by": None if row is None else row["changed_by"],
    }


# -- output -----------------------------------------------------------------------------------

#: A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet shows as text: a leading formula character gets a quote."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def csv_line(fields: Iterable[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(v) for v in fields])
    return out.getvalue()


def json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
