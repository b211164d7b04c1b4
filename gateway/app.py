"""The composition root: ``create_app(settings)`` wires config, adapters and routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.auth import TokenAuthenticator
from gateway.config import AppConfig, ConfigError, Settings
from gateway.http.admin import AUDIT_LOG, add_admin_routes
from gateway.http.middleware import scim_errors
from gateway.http.views import PUBLIC_URL, RECORDER, SERVICES, AppRuntime, dispatch
from gateway.limits import BoundedAdapter, Limiter
from gateway.mapping.engine import MappingError, TemplateMapping, load_mapping, resolve_mapping_dir
from gateway.registry import build_adapter
from gateway.service import ScimService
from gateway.state import build_audit, running

READY: web.AppKey[dict[str, bool]] = web.AppKey("ready", dict)


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


def build_runtimes(settings: Settings, *, source: str = "<config>") -> dict[str, AppRuntime]:
    """One service per configured app; raises ConfigError listing every app's problems."""
    runtimes: dict[str, AppRuntime] = {}
    errors: list[str] = []
    for name, app_config in settings.apps.items():
        try:
            mapping = load_app_mapping(name, app_config, source)
            inner = build_adapter(
                name, app_config.adapter, app_config.settings, source=source, mapping=mapping
            )
        except ConfigError as exc:
            errors.append(str(exc))
            continue
        adapter = BoundedAdapter(
            inner,
            Limiter(app_config.max_concurrency, app_config.max_queue, app_config.call_timeout),
        )
        runtimes[name] = AppRuntime(
            ScimService(name, adapter, app_config), TokenAuthenticator(name, app_config.auth)
        )
    if errors:
        raise ConfigError("\n".join(errors))
    return runtimes


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    ready = request.app[READY]
    ok = all(ready.values())
    body = {"status": "ready" if ok else "starting", "apps": ready}
    return web.json_response(body, status=200 if ok else 503)


def create_app(settings: Settings, *, source: str = "<config>") -> web.Application:
    app = web.Application(middlewares=[scim_errors], client_max_size=settings.server.max_body_size)
    runtimes = build_runtimes(settings, source=source)
    app[SERVICES] = runtimes
    app[PUBLIC_URL] = settings.server.public_url
    app[READY] = dict.fromkeys(runtimes, False)

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

    audit = build_audit(settings, source)
    if audit is not None:
        app[RECORDER] = audit.recorder
        app[AUDIT_LOG] = audit.log

        async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
            async with running(audit):
                yield

        app.cleanup_ctx.append(audit_ctx)  # first in, last out: it outlives the adapters
    app.cleanup_ctx.append(adapters_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if settings.admin is not None:
        add_admin_routes(app, TokenAuthenticator("admin", settings.admin))
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
