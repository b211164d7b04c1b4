"""The ``scim-gateway`` command: serve, check, render, demo, token, guard and audit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import build_runtimes, create_app
from gateway.config import ConfigError, Settings, load_settings
from gateway.demo.run import make_demo, serve
from gateway.errors import ScimError
from gateway.guard import GuardState
from gateway.logs import configure_logging
from gateway.ops_cli import add_ops_commands
from gateway.render import NoDryRun, describe_error, format_calls, render_calls
from gateway.state import StateError
from gateway.state.cli import add_audit_commands
from gateway.telemetry import setup_from_env
from gateway.tls import server_context


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    tls = settings.server.tls
    try:
        ssl_context = server_context(tls) if tls else None
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.server.log_format)
    try:
        telemetry = setup_from_env()
    except ValueError as exc:
        print(f"OpenTelemetry configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        app = create_app(settings, source=args.config, telemetry=telemetry)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        telemetry.shutdown()
        return 2
    host = args.host or settings.server.host
    port = args.port if args.port is not None else settings.server.port
    try:
        # aiohttp's access log prints query strings (filter values): gateway.access replaces it.
        web.run_app(app, host=host, port=port, access_log=None, print=None, ssl_context=ssl_context)
    finally:
        telemetry.shutdown()  # flush the spans still queued
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    try:
        build_runtimes(settings, source=args.config)
        if settings.server.tls is not None:
            server_context(settings.server.tls)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: OK ({len(settings.apps)} app(s): {', '.join(settings.apps)})")
    return 0


def _read_json(path: str | None) -> Any:
    if path is None:
        return None
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")
        return json.loads(text)
    except OSError as exc:
        raise SystemExit(f"cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path} is not JSON: {exc}") from None


def cmd_render(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if args.app not in settings.apps:
        print(f"no app {args.app!r} in {args.config} ({', '.join(settings.apps)})", file=sys.stderr)
        return 2
    only = settings.model_copy(update={"apps": {args.app: settings.apps[args.app]}})
    try:
        service = build_runtimes(only, source=args.config)[args.app].service
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    body, current = _read_json(args.body), _read_json(args.current)
    try:
        calls = render_calls(service, args.method, args.path, body, current)
    except ScimError as exc:
        print(describe_error(exc), file=sys.stderr)
        return 2
    except NoDryRun as exc:
        print(str(exc), file=sys.stderr)
        return 2
    sys.stdout.write(format_calls(calls))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    demo = make_demo(args.port, args.legacy_port, args.db)
    logging.basicConfig(level="WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(demo, run_walkthrough=args.walkthrough, exit_after=args.exit))
    return 0


def cmd_token_new(args: argparse.Namespace) -> int:
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    print(f"token (shown once, give it to the IdP): {token}")
    print(f"config lines for this token, under apps.{args.app}.auth.tokens:")
    print(f"  - name: {args.name}\n    sha256: {digest}")
    if args.read_only:
        print("    read_only: true")
    return 0


def cmd_sql_introspect(args: argparse.Namespace) -> int:
    from adapters.sql.introspect import introspect  # the SQL adapter's own tool

    try:
        text = asyncio.run(introspect(_dsn(args.dsn), args.table, args.resource))
    except (LookupError, OSError, ValueError) as exc:
        print(f"sql introspect: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def cmd_sql_demo(args: argparse.Namespace) -> int:
    from adapters.sql.demo import make_payroll_demo, serve_payroll

    demo = make_payroll_demo(args.port, _dsn(args.dsn), args.schema)
    logging.basicConfig(level="WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_payroll(
                demo, reset=args.reset, run_walkthrough=args.walkthrough, exit_after=args.exit
            )
        )
    return 0


def _dsn(value: str | None) -> str:
    """A DSN given as is or as a secret reference (``${env:NAME}``); never printed."""
    from gateway.config import resolve_secret

    if not value:
        raise SystemExit("give --dsn (or set PAYROLL_DSN): postgresql://user@host:5432/db")
    try:
        return resolve_secret(value)
    except ValueError as exc:
        raise SystemExit(f"--dsn: {exc}") from None


def cmd_guard(args: argparse.Namespace) -> int:
    """Status or release of an app's deprovisioning guard: through a running gateway's
    admin calls (``--url``), or straight on the state store of a config file (``-c``)."""
    from gateway.guard_control import GuardControl, GuardError, HttpGuardControl, format_state

    async def ask(control: GuardControl) -> GuardState:
        if args.guard_command == "release":
            return await control.release(args.app, args.minutes)
        return await control.status(args.app)

    async def on_store(settings: Settings) -> GuardState:
        from gateway.state import state_url
        from gateway.state.guard import store_guard_control

        url = state_url(settings, config)
        assert url is not None  # a config file always has a store (its default file)
        async with store_guard_control(url, settings) as control:
            return await ask(control)

    # An explicit -c wins over SCIM_GATEWAY_URL; an explicit --url over SCIM_GATEWAY_CONFIG.
    http = args.url or (None if args.config else os.environ.get("SCIM_GATEWAY_URL"))
    config = args.config or os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml")
    try:
        if http:
            token = os.environ.get(args.token_env)
            if not token:
                print(f"set {args.token_env} to an admin token (admin: section)", file=sys.stderr)
                return 2
            state = asyncio.run(ask(HttpGuardControl(http, token)))
        else:
            state = asyncio.run(on_store(_load(config)))
    except (GuardError, StateError) as exc:
        print(f"guard {args.guard_command}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(format_state(state))
    return 0


def _guard_parser(sub: Any) -> None:
    guard = sub.add_parser("guard", help="the mass-deprovisioning guard: status and release")
    guard_sub = guard.add_subparsers(dest="guard_command", required=True)
    for name, text in (
        ("status", "what the guard counts, holds and has released"),
        ("release", "let the held deletes and deactivations pass on the IdP's next retry"),
    ):
        command = guard_sub.add_parser(name, help=text)
        command.add_argument("--app", required=True, help="the app, as named under apps:")
        where = command.add_mutually_exclusive_group()
        where.add_argument(
            "--config",
            "-c",
            help="work on the state store of this config, no gateway needed (the default: "
            "$SCIM_GATEWAY_CONFIG or gateway.yaml)",
        )
        where.add_argument(
            "--url", help="ask a running gateway instead, by its admin calls ($SCIM_GATEWAY_URL)"
        )
        command.add_argument(
            "--token-env",
            default="SCIM_GATEWAY_ADMIN_TOKEN",
            help="with --url: the environment variable holding an admin token",
        )
        if name == "release":
            command.add_argument(
                "--minutes", type=float, help="also let every deprovisioning pass for this long"
            )
        command.set_defaults(func=cmd_guard)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scim-gateway", description=__doc__)
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", "-c", default=os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml")
    )
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check", help="validate a config file and its adapters' settings")
    check.add_argument(
        "--config", "-c", default=os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml")
    )
    check.set_defaults(func=cmd_check)

    render = sub.add_parser(
        "render", help="print the legacy calls a SCIM request would make, without sending them"
    )
    render.add_argument(
        "--config", "-c", default=os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml")
    )
    render.add_argument("--app", required=True, help="the app, as named under apps:")
    render.add_argument("--method", required=True, help="POST, PUT, PATCH or DELETE")
    render.add_argument("--path", required=True, help="/Users, /Groups/{id}, ...")
    render.add_argument("--body", help="the SCIM request body: a JSON file, or - for stdin")
    render.add_argument("--current", help="PUT/PATCH: the resource as it is now (a JSON file)")
    render.set_defaults(func=cmd_render)

    demo = sub.add_parser(
        "demo", help="run Acme HR (a legacy REST app) and a gateway in front of it, on loopback"
    )
    demo.add_argument("--port", type=int, default=8080, help="the gateway's port")
    demo.add_argument("--legacy-port", type=int, default=8081, help="Acme HR's port")
    demo.add_argument("--db", help="Acme HR's SQLite file (default: a new temporary one)")
    demo.add_argument(
        "--walkthrough", action="store_true", help="provision a user and a group and show them"
    )
    demo.add_argument("--exit", action="store_true", help="stop after starting (and walking)")
    demo.set_defaults(func=cmd_demo)

    sql = sub.add_parser("sql", help="tools of the SQL adapter (PostgreSQL)")
    sql_sub = sql.add_subparsers(dest="sql_command", required=True)
    introspect = sql_sub.add_parser(
        "introspect", help="read a table and print a starting mapping and adapter settings"
    )
    introspect.add_argument("--dsn", required=True, help="a DSN or a reference: ${env:NAME}")
    introspect.add_argument("--table", required=True, help="[schema.]table (default: public)")
    introspect.add_argument("--resource", choices=("User", "Group"), default="User")
    introspect.set_defaults(func=cmd_sql_introspect)
    sql_demo = sql_sub.add_parser(
        "demo", help="the payroll database (deploy/sql/payroll.sql) behind a gateway"
    )
    sql_demo.add_argument(
        "--dsn", default=os.environ.get("PAYROLL_DSN"), help="the PostgreSQL to load it into"
    )
    sql_demo.add_argument("--schema", default="payroll_demo", help="kept between runs")
    sql_demo.add_argument("--reset", action="store_true", help="drop the schema and load it anew")
    sql_demo.add_argument("--port", type=int, default=8080, help="the gateway's port")
    sql_demo.add_argument(
        "--walkthrough", action="store_true", help="provision a user and a unit, show the rows"
    )
    sql_demo.add_argument("--exit", action="store_true", help="stop after starting (and walking)")
    sql_demo.set_defaults(func=cmd_sql_demo)

    token = sub.add_parser("token", help="inbound token tools")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    new = token_sub.add_parser("new", help="make a strong token and print its config digest")
    new.add_argument("--app", default="<app>", help="the app, as named under apps:")
    new.add_argument("--name", required=True, help="the credential's name, shown in the audit")
    new.add_argument("--read-only", action="store_true", help="the token may only read")
    new.set_defaults(func=cmd_token_new)
    _guard_parser(sub)
    add_audit_commands(sub, os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml"))
    add_ops_commands(sub, os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml"))
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
