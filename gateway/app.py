"""The composition root: ``create_app(settings)`` wires config, adapters and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from gateway.auth import Authenticator
from gateway.breaker import STATE_LEVELS, CircuitBreaker, State
from gateway.config import AppConfig, ConfigError, Settings
from gateway.dedupe import MemoryUnknownCreates, UnknownCreates
from gateway.guard import Guard, GuardStore, MemoryGuardStore
from gateway.http.admin import AUDIT_LOG, add_admin_routes
from gateway.http.middleware import scim_errors
from gateway.http.observe import METRICS, metrics_view, observe
from gateway.http.proxies import proxy_middleware
from gateway.http.views import PUBLIC_URL, RECORDER, SERVICES, AppRuntime, dispatch
from gateway.limits import GuardedAdapter, Limiter
from gateway.mapping.engine import MappingError, TemplateMapping, load_mapping, resolve_mapping_dir
from gateway.metrics import Metrics
from gateway.ratelimit import RateLimiter
from gateway.registry import build_adapter
from gateway.service import ScimService
from gateway.state import StateStore, build_audit, running, state_url
from gateway.state.guard import StateGuardStore
from gateway.state.ledger import Ledger
from gateway.state.unknown import StateUnknownCreates
from gateway.telemetry import Telemetry, adopt_global_tracing
from gateway.wrapping import unwrap

READY: web.AppKey[dict[str, bool]] = web.AppKey("ready", dict)
#: The state store, when there is one (the console's reconcile and access review read it).
STORE: web.AppKey[StateStore] = web.AppKey("store", StateStore)
#: Each app's circuit breaker (apps with `breaker.enabled: false` have none).
BREAKERS: web.AppKey[dict[str, CircuitBreaker]] = web.AppKey("breakers", dict)


def breaker_states(app: web.Application) -> dict[str, State]:
    """Each app's breaker state, for /readyz and a metrics gauge (see breaker.STATE_LEVELS)."""
    return {name: breaker.state for name, breaker in app[BREAKERS].items()}


def load_app_mapping(name: str, app_config: AppConfig, source: str) -> TemplateMapping | None:
    """The app's mapping, loaded and checked; ConfigError names the key and each problem."""
    if app_config.mapping is None:
        return None
    config_dir = None if source.startswith("<") else Path(source).parent
    try:
        return load_mapping(resolve_mapping_dir(app_config.mapping, config_dir))
    except MappingError as exc:
        lines = [f"{source}: apps.{name}.mapping: {error}" for error in exc.errors]
        raise ConfigError("\n".join(lines)) from None


def build_runtimes(
    settings: Settings,
    *,
    source: str = "<config>",
    guard_store: GuardStore | None = None,
    unknown_creates: UnknownCreates | None = None,
    metrics: Metrics | None = None,
) -> dict[str, AppRuntime]:
    """One service per configured app; raises ConfigError listing every app's problems.

    ``guard_store``: where the deprovisioning guards keep holds and releases;
    ``unknown_creates``: where creates of unknown outcome are remembered
    (default for both: this process's memory; the state store shares them).
    """
    guard_store = guard_store or MemoryGuardStore()
    unknown_creates = unknown_creates or MemoryUnknownCreates()
    runtimes: dict[str, AppRuntime] = {}
    errors: list[str] = []
    for name, app_config in settings.apps.items():
        try:
            mapping = load_app_mapping(name, app_config, source)
            inner = build_adapter(
                name,
                app_config.adapter,
                app_config.settings,
                source=source,
                mapping=mapping,
                unique_group_names=app_config.unique_group_names,
            )
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        breaker = None
        if app_config.breaker.enabled:
            breaker = CircuitBreaker(name, app_config.breaker)
        adapter = GuardedAdapter(
            inner,
            Limiter(app_config.max_concurrency, app_config.max_queue, app_config.call_timeout),
            breaker,
            kind=app_config.adapter,
            metrics=metrics,
        )
        guard = None
        if app_config.guard is not None:
            guard = Guard(name, app_config.guard, guard_store)
        service = ScimService(
            name, adapter, app_config, guard=guard, unknown_creates=unknown_creates
        )
        if app_config.check_unique_before_create:
            where = f"{source}: apps.{name}.check_unique_before_create"
            errors.extend(f"{where}: {problem}" for problem in service.unique_lookup_problems())
        if app_config.unique_group_names and not service.can_check_group_names():
            errors.append(
                f"{source}: apps.{name}.unique_group_names: the adapter cannot filter Groups "
                "by displayName eq, so it cannot keep group names unique; declare that filter "
                "or set unique_group_names: false"
            )
        limit = app_config.rate_limit
        runtimes[name] = AppRuntime(
            service,
            Authenticator(name, app_config.auth),
            RateLimiter(limit.rate, limit.burst) if limit else None,
        )
    if errors:
        raise ConfigError("\n".join(errors))
    return runtimes


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """503 until every adapter is open. An open breaker shows in the body but keeps 200:
    one legacy app being down must not take the gateway (and every other app) out of
    the load balancer."""
    ready = request.app[READY]
    ok = all(ready.values())
    body = {
        "status": "ready" if ok else "starting",
        "apps": ready,
        "breakers": breaker_states(request.app),
    }
    return web.json_response(body, status=200 if ok else 503)


def _own_store(settings: Settings, source: str) -> StateStore | None:
    """The settings' state store (None: settings built in code without ``state.url``)."""
    url = state_url(settings, source)
    return None if url is None else StateStore(url, lease_seconds=settings.state.lease_seconds)


def _add_ledger(app: web.Application, ledger: Ledger, runtimes: dict[str, AppRuntime]) -> None:
    """Every service notes its writes; the writer runs inside the store's lifetime."""
    for runtime in runtimes.values():
        runtime.service.ledger = ledger

    async def ledger_ctx(app: web.Application) -> AsyncIterator[None]:
        await ledger.start()
        try:
            yield
        finally:
            await ledger.aclose()

    app.cleanup_ctx.append(ledger_ctx)


def create_app(
    settings: Settings,
    *,
    source: str = "<config>",
    guard_store: GuardStore | None = None,
    unknown_creates: UnknownCreates | None = None,
    telemetry: Telemetry | None = None,
) -> web.Application:
    """The gateway; ``telemetry`` (from ``setup_from_env``) adds its OTLP metric readers.

    With a state store, the guards' holds and the creates of unknown outcome live
    in it, shared by every replica; ``guard_store`` and ``unknown_creates`` win.
    """
    telemetry = telemetry or Telemetry()
    adopt_global_tracing()
    metrics = Metrics(telemetry.metric_readers, telemetry.resource)
    proxies = settings.server.trusted_proxies
    # The proxy middleware clones the request: it goes first, outside the others.
    middlewares: list[Middleware] = [observe, scim_errors]
    if proxies:
        middlewares.insert(0, proxy_middleware(proxies))
    app = web.Application(middlewares=middlewares, client_max_size=settings.server.max_body_size)
    audit = build_audit(settings, source)
    store = audit.store if audit is not None else None
    if store is None and (guard_store is None or unknown_creates is None):
        store = _own_store(settings, source)  # the audit is off; the store serves these
    if store is not None:
        guard_store = guard_store or StateGuardStore(store)
        unknown_creates = unknown_creates or StateUnknownCreates(store)
    runtimes = build_runtimes(
        settings,
        source=source,
        guard_store=guard_store,
        unknown_creates=unknown_creates,
        metrics=metrics,
    )
    app[METRICS] = metrics
    app[SERVICES] = runtimes
    app[PUBLIC_URL] = settings.server.public_url
    app[READY] = dict.fromkeys(runtimes, False)
    app[BREAKERS] = breakers = {
        name: breaker
        for name, runtime in runtimes.items()
        if (guarded := unwrap(runtime.service.adapter, GuardedAdapter)) is not None
        and (breaker := guarded.breaker) is not None
    }
    metrics.watch_breakers(lambda: {n: STATE_LEVELS[b.state] for n, b in breakers.items()})

    async def adapters_ctx(app: web.Application) -> AsyncIterator[None]:
        opened = []
        try:
            for name, runtime in runtimes.items():
                await runtime.service.adapter.open()
                opened.append(runtime)
                app[READY][name] = True
            yield
        finally:
            for runtime in reversed(opened):
                await runtime.service.adapter.aclose()
            for runtime in runtimes.values():
                await runtime.auth.aclose()

    async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
        yield
        metrics.shutdown()

    app.cleanup_ctx.append(metrics_ctx)
    if audit is not None:
        app[RECORDER] = audit.recorder
        app[AUDIT_LOG] = audit.log

        async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
            async with running(audit):
                yield

        app.cleanup_ctx.append(audit_ctx)  # before the adapters': it outlives them
    elif store is not None:

        async def store_ctx(app: web.Application) -> AsyncIterator[None]:
            await store.open(lease=False)  # no audit: nothing of this process to recover
            try:
                yield
            finally:
                await store.close()

        app.cleanup_ctx.append(store_ctx)
    if store is not None:
        app[STORE] = store
        if settings.state.ledger:
            _add_ledger(app, Ledger(store), runtimes)
    app.cleanup_ctx.append(adapters_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    add_admin_routes(app, settings.admin, runtimes)
    if settings.admin is not None and settings.console.enabled:
        from gateway.console import add_console_routes  # jinja2 templates: loaded only when on

        add_console_routes(app, settings)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
