"""``scim-gateway audit list|export|verify|prune``: the audit trail from the command line.

Each command reads the same config file as ``serve`` to find the store.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.config import ConfigError, Settings, load_settings
from gateway.state import AuditLog, StateError, open_log
from gateway.state.export import EXPORT_FORMATS, export_lines, filters_from, jsonl, table


def _run(args: argparse.Namespace, work: Callable[[AuditLog], Awaitable[int]]) -> int:
    try:
        settings: Settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2

    async def main() -> int:
        async with open_log(settings, args.config) as log:
            return await work(log)

    try:
        return asyncio.run(main())
    except (StateError, ValueError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2


def cmd_list(args: argparse.Namespace) -> int:
    async def work(log: AuditLog) -> int:
        events, _ = await log.list(filters_from(vars(args)), limit=args.limit)
        if args.format == "jsonl":
            sys.stdout.writelines(jsonl(e) for e in events)
        else:
            sys.stdout.write(table(events))
        return 0

    return _run(args, work)


def cmd_export(args: argparse.Namespace) -> int:
    async def work(log: AuditLog) -> int:
        async for line in export_lines(log, filters_from(vars(args)), args.format):
            sys.stdout.write(line)
        return 0

    return _run(args, work)


def cmd_verify(args: argparse.Namespace) -> int:
    async def work(log: AuditLog) -> int:
        verdict = await log.verify()
        sys.stdout.write(verdict.describe() + "\n")
        return 0 if verdict.ok else 1

    return _run(args, work)


def cmd_prune(args: argparse.Namespace) -> int:
    async def work(log: AuditLog) -> int:
        point = await log.prune(args.older_than_days)
        if point is None:
            sys.stdout.write("nothing to prune\n")
        else:
            sys.stdout.write(f"pruned up to seq {point.seq}; signed checkpoint written\n")
        return 0

    return _run(args, work)


def _filter_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", help="only this app")
    p.add_argument("--user", help="a userName / displayName or a SCIM id")
    p.add_argument("--operation", help="create, replace, patch, delete, get, list, ...")
    p.add_argument("--outcome", choices=("pending", "success", "refused", "failed", "unknown"))
    p.add_argument("--since", help="ISO date or time, inclusive (UTC unless given)")
    p.add_argument("--until", help="ISO date or time, exclusive")


def add_audit_commands(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_default: str
) -> None:
    audit = sub.add_parser("audit", help="read, export, verify and prune the audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)

    def command(name: str, help: str, func: Callable[[argparse.Namespace], int]) -> Any:
        p = audit_sub.add_parser(name, help=help)
        p.add_argument("--config", "-c", default=config_default)
        p.set_defaults(func=func)
        return p

    listing = command("list", "audit events, oldest first, filtered", cmd_list)
    _filter_options(listing)
    listing.add_argument("--format", choices=("table", "jsonl"), default="table")
    listing.add_argument("--limit", type=int, default=1000, help="at most this many (1000)")
    export = command("export", "every matching event as JSON lines or CSV", cmd_export)
    _filter_options(export)
    export.add_argument("--format", choices=tuple(EXPORT_FORMATS), default="jsonl")
    command("verify", "check the hash chain; name the first event that breaks", cmd_verify)
    prune = command("prune", "delete old events behind a signed checkpoint", cmd_prune)
    prune.add_argument("--older-than-days", type=float, required=True)
