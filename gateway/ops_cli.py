"""``scim-gateway reconcile | access-review | sweep``: the operator's checks of an app.

Each reads the same config file as ``serve``, opens the app's adapter and the
state store itself (no gateway needed), and exits 0 when all is well, 1 when
reconcile found differences (for cron and CI), 2 on an error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TextIO

from gateway.app import build_runtimes
from gateway.config import ConfigError, Settings, load_settings
from gateway.errors import ScimError
from gateway.operation import NULL_RECORDER, Operation, Recorder
from gateway.reconcile import (
    FINDING_FIELDS,
    REVIEW_FIELDS,
    Reconciler,
    RunResult,
    csv_line,
    json_line,
    review,
)
from gateway.sdk import UpstreamError
from gateway.service import ScimService
from gateway.state import StateError, StateStore, build_audit, running, state_url
from gateway.state.ledger import Ledger, Note, deactivated_before


def _settings(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        raise SystemExit(f"configuration error:\n{exc}") from None


@asynccontextmanager
async def opened(settings: Settings, source: str, app: str) -> AsyncIterator[ScimService]:
    """The app's service with its adapter open (only this app's adapter is built)."""
    if app not in settings.apps:
        raise ConfigError(f"no app {app!r} in {source} ({', '.join(settings.apps)})")
    only = settings.model_copy(update={"apps": {app: settings.apps[app]}})
    service = build_runtimes(only, source=source)[app].service
    await service.adapter.open()
    try:
        yield service
    finally:
        await service.adapter.aclose()


@asynccontextmanager
async def store_of(settings: Settings, source: str) -> AsyncIterator[StateStore]:
    url = state_url(settings, source)
    if url is None:
        raise StateError("no state store: set state.url")
    store = StateStore(url, lease_seconds=settings.state.lease_seconds)
    await store.open(lease=False)
    try:
        yield store
    finally:
        await store.close()


def _run(work: Callable[[], Coroutine[Any, Any, int]], what: str) -> int:
    try:
        return asyncio.run(work())
    except (ConfigError, StateError, ScimError, UpstreamError, OSError) as exc:
        print(f"{what}: {exc}", file=sys.stderr)
        return 2


# -- reconcile --------------------------------------------------------------------------------


class Bar:
    """A progress bar on stderr, drawn only on a terminal, at most ten times a second."""

    def __init__(self, label: str, out: TextIO) -> None:
        self.label = label
        self.out = out
        self.on = out.isatty()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if not self.on or (now - self._last < 0.1 and done < total):
            return
        self._last = now
        share = done / total if total else 1.0
        filled = int(share * 30)
        self.out.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{total}")
        self.out.flush()

    def end(self) -> None:
        if self.on:
            self.out.write("\n")


async def write_findings(reconciler: Reconciler, result: RunResult, form: str, out: TextIO) -> None:
    if form == "csv":
        out.write(csv_line(FINDING_FIELDS))
        async for finding in reconciler.findings(result.run_id):
            out.write(csv_line(finding.as_dict().values()))
        return
    head = {"app": result.app, "run_id": result.run_id, "read": result.read}
    out.write(json_line({**head, "counts": result.counts})[:-2] + ',"findings":[')
    first = True
    async for finding in reconciler.findings(result.run_id):
        out.write(("" if first else ",") + "\n" + json_line(finding.as_dict()).rstrip("\n"))
        first = False
    out.write("\n]}\n")


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings = _settings(args.config)

    async def work() -> int:
        async with (
            store_of(settings, args.config) as store,
            opened(settings, args.config, args.app) as service,
        ):
            reconciler = Reconciler(service, store, page=args.page_size)
            bar = Bar(f"reconcile {args.app}", sys.stderr)
            result = await reconciler.run(resume=args.resume, progress=bar)
            bar.end()
            await write_findings(reconciler, result, args.format, sys.stdout)
        counts = ", ".join(f"{n} {kind}" for kind, n in result.counts.items())
        print(f"reconcile {args.app}: {result.read} read; {counts}", file=sys.stderr)
        return 0 if result.clean else 1

    return _run(work, "reconcile")


# -- access review ------------------------------------------------------------------------------


def cmd_access_review(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    apps = [args.app] if args.app else list(settings.apps)

    async def work() -> int:
        if args.format == "csv":
            sys.stdout.write(csv_line(["app", *REVIEW_FIELDS]))
        async with store_of(settings, args.config) as store:
            for app in apps:
                async with opened(settings, args.config, app) as service:
                    async for row in review(service, store):
                        _write_review(sys.stdout, args.format, {"app": app, **row})
        return 0

    return _run(work, "access-review")


def _write_review(out: TextIO, form: str, row: dict[str, Any]) -> None:
    out.write(csv_line(row.values()) if form == "csv" else json_line(row))


# -- sweep --------------------------------------------------------------------------------------


async def sweep_app(
    service: ScimService, store: StateStore, recorder: Recorder, days: float
) -> tuple[int, int]:
    """Delete the users the policy deactivated ``days`` ago and that are still inactive;
    (deleted, kept because an IdP reactivated them)."""
    ledger = Ledger(store)
    deleted = kept = 0
    for row in await deactivated_before(store, service.app, days):
        scim_id = row["scim_id"]
        record = await service.adapter.get("User", scim_id)
        current = service.to_scim(service.types["User"], record, "")
        if current.get("active") is not False:
            kept += 1
            await ledger.write([_note(service.app, row, "active")])
            continue
        await _audited_delete(service, recorder, scim_id, row["name"])
        await ledger.write([_note(service.app, row, "deleted")])
        deleted += 1
    return deleted, kept


def _note(app: str, row: Any, state: str) -> Note:
    return Note(app, "User", row["scim_id"], row["name"], state, None, "sweep", time.time())


async def _audited_delete(
    service: ScimService, recorder: Recorder, scim_id: str, name: str | None
) -> None:
    op = Operation(service.app, "DELETE", f"/Users/{scim_id}", client="sweep", recorder=recorder)
    op.describe("delete", "User", scim_id)
    op.name = name
    op.extra["deprovision"] = "sweep"
    await op.open()
    try:
        await service.adapter.delete("User", scim_id)
    except ScimError as exc:
        await op.close(exc.status, exc.scim_type)
        raise
    except Exception:
        await op.close(502)
        raise
    await op.close(204)


def cmd_sweep(args: argparse.Namespace) -> int:
    settings = _settings(args.config)
    apps = [args.app] if args.app else list(settings.apps)
    due = {a: settings.apps[a].deprovision.delete_after_days for a in apps if a in settings.apps}

    async def work() -> int:
        audit = build_audit(settings, args.config)
        if audit is None:
            async with store_of(settings, args.config) as store:
                return await _sweep_all(settings, args.config, due, store, NULL_RECORDER)
        async with running(audit):
            return await _sweep_all(settings, args.config, due, audit.store, audit.recorder)

    return _run(work, "sweep")


async def _sweep_all(
    settings: Settings,
    source: str,
    due: dict[str, float | None],
    store: StateStore,
    recorder: Recorder,
) -> int:
    for app, days in due.items():
        if days is None:
            print(f"{app}: no deprovision.delete_after_days: nothing to sweep")
            continue
        async with opened(settings, source, app) as service:
            deleted, kept = await sweep_app(service, store, recorder, days)
        print(f"{app}: deleted {deleted} deactivated user(s); kept {kept} reactivated")
    return 0


# -- the parsers --------------------------------------------------------------------------------


def add_ops_commands(sub: Any, default_config: str) -> None:
    rec = sub.add_parser(
        "reconcile", help="compare an app's accounts with what the gateway provisioned"
    )
    rec.add_argument("--app", required=True, help="the app, as named under apps:")
    rec.add_argument("--format", choices=("json", "csv"), default="json")
    rec.add_argument("--resume", action="store_true", help="go on with the last unfinished run")
    rec.add_argument("--page-size", type=int, default=500, help="accounts read per page")
    rec.set_defaults(func=cmd_reconcile)
    review_ = sub.add_parser(
        "access-review", help="every account per app: groups, who provisioned it, when, state"
    )
    review_.add_argument("--app", help="only this app (default: every app)")
    review_.add_argument("--format", choices=("json", "csv"), default="csv")
    review_.set_defaults(func=cmd_access_review)
    sweep = sub.add_parser(
        "sweep", help="delete users deactivated by the deprovision policy N days ago"
    )
    sweep.add_argument("--app", help="only this app (default: every app with a policy)")
    sweep.set_defaults(func=cmd_sweep)
    for command in (rec, review_, sweep):
        command.add_argument("--config", "-c", default=default_config)
