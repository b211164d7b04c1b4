"""The ``scim-gateway`` command: serve, check, render, demo, token, guard and audit."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import ssl
import sys
import urllib.request
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.app import build_runtimes, create_app, load_app_mapping
from gateway.config import ConfigError, Settings, load_settings
from gateway.demo.run import make_demo, serve
from gateway.errors import ScimError
from gateway.guard import GuardState
from gateway.http.connections import guard_connections
from gateway.logs import configure_logging
from gateway.ops_cli import add_ops_commands
from gateway.registry import build_adapter
from gateway.render import (
    NoDryRun,
    describe_error,
    format_calls,
    format_search,
    render_calls,
    render_search,
)
from gateway.scaffold import ScaffoldError, scaffold
from gateway.state import StateError
from gateway.state.cli import add_audit_commands
from gateway.telemetry import setup_from_env
from gateway.tls import server_context
from gateway.workers import (
    Supervisor,
    announce_ready,
    bind,
    exit_with_supervisor,
    settle_gc,
    worker_count,
)


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
    port = _port(args.port, settings)
    start_line = _start_line(settings, host, port, tls=ssl_context is not None)
    if args.workers > 1 and not args.worker:
        telemetry.shutdown()  # the workers export their own
        return _supervise(args, host, port, start_line)
    if args.worker:  # one of `serve --workers`: shares the port, stops with its supervisor
        app.cleanup_ctx.append(exit_with_supervisor)
    guard_connections(app, settings.server)  # per process: header timeout, connection caps
    app.on_startup.append(settle_gc)  # after the cleanup contexts' start-up (adapters open)
    try:
        # aiohttp's access log prints query strings (filter values): gateway.access replaces it.
        web.run_app(
            app,
            host=host,
            port=port,
            reuse_port=args.worker,
            access_log=None,
            # A worker's start line was printed by the supervisor; it logs that it listens.
            print=announce_ready if args.worker else start_line,
            ssl_context=ssl_context,
            loop=_event_loop(settings.server.event_loop),
        )
    except (OSError, StateError, ConfigError) as exc:
        print(f"scim-gateway serve: {_start_failure(exc, host, port)}", file=sys.stderr)
        return 2
    finally:
        telemetry.shutdown()  # flush the spans still queued
    return 0


def _event_loop(kind: str) -> asyncio.AbstractEventLoop | None:
    """server.event_loop: None lets aiohttp make Python's own; "uvloop" (installed: the
    config checked that) makes one of uvloop's."""
    if kind != "uvloop":
        return None
    import uvloop

    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def _port(given: int | None, settings: Settings) -> int:
    """--port, else $SCIM_GATEWAY_PORT, else server.port: one rule for serve and health."""
    if given is not None:
        return given
    from_env = os.environ.get("SCIM_GATEWAY_PORT")
    if from_env:
        try:
            return int(from_env)
        except ValueError:
            raise SystemExit(f"SCIM_GATEWAY_PORT is not a port number: {from_env!r}") from None
    return settings.server.port


def cmd_health(args: argparse.Namespace) -> int:
    """The container's health check: /healthz (or /readyz) of the gateway this config serves,
    on the configured port, over TLS when the server has it. Exit 0 when it answers 200."""
    settings = _load(args.config)
    host = settings.server.host
    if host in ("", "0.0.0.0", "::"):  # listening everywhere: ask on loopback
        host = "::1" if host == "::" else "127.0.0.1"
    scheme = "https" if settings.server.tls else "http"
    where = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{where}:{_port(args.port, settings)}/{'readyz' if args.ready else 'healthz'}"
    try:
        # Its own process on loopback: the certificate names the public host, not 127.0.0.1.
        context = _loopback_tls() if settings.server.tls else None
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as answer:
            ok = answer.status == 200
    except (OSError, ValueError) as exc:
        print(f"health: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def _loopback_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _version() -> str:
    try:
        return version("scim-gateway")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _start_line(settings: Settings, host: str, port: int, *, tls: bool) -> Callable[[str], None]:
    """What aiohttp calls once the port is bound: one line saying what serves where."""

    def say(_aiohttp_banner: str) -> None:
        scheme = "https" if tls else "http"
        where = f"[{host}]" if ":" in host else host
        apps = ", ".join(settings.apps)
        print(
            f"scim-gateway {_version()} serving {len(settings.apps)} app(s) ({apps}) "
            f"on {scheme}://{where}:{port} (pid {os.getpid()})"
            + (" on uvloop" if settings.server.event_loop == "uvloop" else ""),
            flush=True,
        )

    return say


def _start_failure(exc: OSError | StateError | ConfigError, host: str, port: int) -> str:
    """What failed at start: a taken port, a state store that cannot open (one line each),
    an adapter whose backend does not match its settings (its problems, one per line)."""
    if isinstance(exc, ConfigError):
        return f"configuration error:\n{exc}"
    if isinstance(exc, StateError):
        return f"the state store cannot be used: {exc}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {host}:{port}: the port is in use"
    return f"cannot start: {exc.strerror or exc}"


def _supervise(
    args: argparse.Namespace, host: str, port: int, start_line: Callable[[str], None]
) -> int:
    """``serve --workers N``: bind once, then run N workers on the socket (gateway/workers.py)."""
    try:
        sock = bind(host, port)
    except OSError as exc:
        print(f"scim-gateway serve: {_start_failure(exc, host, port)}", file=sys.stderr)
        return 2
    start_line("")
    command = [sys.executable, "-m", "gateway.cli", "serve", "--config", args.config]
    command += ["--host", host, "--port", str(port), "--worker"]
    return Supervisor(command, sock, args.workers).run()


def cmd_check(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    try:
        build_runtimes(settings, source=args.config)
        if settings.server.tls is not None:
            server_context(settings.server.tls)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        return 2
    if args.online:
        problems = asyncio.run(online_problems(settings, args.config))
        if problems:
            print("check --online found problems:\n" + "\n".join(problems), file=sys.stderr)
            return 2
    online = ", each reached online" if args.online else ""
    print(f"{args.config}: OK ({len(settings.apps)} app(s): {', '.join(settings.apps)}{online})")
    return 0


async def online_problems(settings: Settings, source: str) -> list[str]:
    """Each app's adapter, opened against its backend: what does not match the settings."""
    problems: list[str] = []
    for name, app in settings.apps.items():
        where = f"{source}: apps.{name}"
        mapping = load_app_mapping(name, app, source)
        adapter = build_adapter(name, app.adapter, app.settings, source=source, mapping=mapping)
        try:
            problems += [f"{where}.settings.{problem}" for problem in await adapter.check()]
        except ScimError as exc:  # unreachable, refused, timed out
            problems.append(f"{where}: cannot reach the app: {exc.detail or type(exc).__name__}")
        except ConfigError as exc:  # an adapter whose open() refuses what it found
            problems += [f"{source}: {line}" for line in str(exc).splitlines()]
    return problems


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
        if args.method.upper() == "GET":
            search = asyncio.run(render_search(service, args.path))
            sys.stdout.write(format_search(search, service.config.max_filter_scan))
            return 0
        calls = render_calls(service, args.method, args.path, body, current)
    except ScimError as exc:
        print(describe_error(exc), file=sys.stderr)
        return 2
    except (NoDryRun, ConfigError) as exc:
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


def cmd_new_adapter(args: argparse.Namespace) -> int:
    try:
        root = scaffold(args.name, Path(args.dir))
    except ScaffoldError as exc:
        print(f"scim-gateway new-adapter: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {root}: run `pytest` there for the contract suite; docs/adapters.md is the guide")
    return 0


def _config_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--config",
        "-c",
        default=os.environ.get("SCIM_GATEWAY_CONFIG", "gateway.yaml"),
        help="the config file (default: %(default)s, from $SCIM_GATEWAY_CONFIG when set)",
    )


def _workers(text: str) -> int:
    try:
        return worker_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a number of processes (at least 1), or auto") from None


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="scim-gateway", description=__doc__)
    top.add_argument("--version", action="version", version=f"scim-gateway {_version()}")
    sub = top.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    _config_option(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int, help="default: $SCIM_GATEWAY_PORT, else server.port")
    serve.add_argument(
        "--workers",
        type=_workers,
        default=1,
        help="processes answering on the port (default 1; auto: one per core)",
    )
    serve.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # see workers.py
    serve.set_defaults(func=cmd_serve)

    health = sub.add_parser(
        "health", help="ask the gateway this config serves for /healthz (exit 0 when healthy)"
    )
    _config_option(health)
    health.add_argument("--port", type=int, help="default: $SCIM_GATEWAY_PORT, else server.port")
    health.add_argument("--ready", action="store_true", help="ask /readyz instead")
    health.add_argument("--timeout", type=float, default=2.0, help="seconds (default: 2)")
    health.set_defaults(func=cmd_health)

    check = sub.add_parser("check", help="validate a config file and its adapters' settings")
    _config_option(check)
    check.add_argument(
        "--online",
        action="store_true",
        help="also connect to each app: the columns (SQL) and endpoints (REST) named exist",
    )
    check.set_defaults(func=cmd_check)

    render = sub.add_parser(
        "render", help="print the legacy calls a SCIM request would make, without sending them"
    )
    _config_option(render)
    render.add_argument("--app", required=True, help="the app, as named under apps:")
    render.add_argument("--method", required=True, help="GET, POST, PUT, PATCH or DELETE")
    render.add_argument(
        "--path",
        required=True,
        help='/Users, /Groups/{id}, ...; GET: /Users?filter=userName eq "x"',
    )
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
    scaffold = sub.add_parser(
        "new-adapter", help="write a template adapter package that passes the contract suite"
    )
    scaffold.add_argument("name", help="the adapter's name and Python package (e.g. my_crm)")
    scaffold.add_argument("--dir", default=".", help="the folder to write it in (default: .)")
    scaffold.set_defaults(func=cmd_new_adapter)
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
