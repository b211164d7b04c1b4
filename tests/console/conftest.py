"""A real Acme HR (the demo legacy app) on loopback and a gateway in front of it, with a
state store (SQLite file) and admin credentials, written as a config file the CLI
commands read too."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright
from support import TOKEN, digest

from gateway.app import create_app
from gateway.cli import main
from gateway.config import load_settings
from gateway.demo.legacy_app import create_legacy_app
from gateway.http.views import RECORDER, SERVICES
from gateway.mapping.engine import MAPPINGS_DIR
from gateway.state import AuditRecorder

ACME_KEY = "acme-key-for-console-tests"
ADMIN_TOKEN = "admin-token-for-console-0123456789"
OPERATOR_TOKEN = "operator-token-for-console-0123456789"
ADMIN_PASSWORD = "correct horse battery staple"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM = "/apps/acme/scim/v2"

Client = TestClient[web.Request, web.Application]


@dataclass
class Acme:
    """Acme HR's own API, for the direct edits an operator's colleagues make."""

    http: aiohttp.ClientSession
    url: str

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.url}{path}", json=body) as resp:
            assert resp.status < 300, (method, path, resp.status, await resp.text())
            return None if resp.status == 204 else await resp.json()


@dataclass
class Setup:
    config: Path
    gateway: Client
    acme: Acme
    legacy: TestServer

    async def scim(self, method: str, path: str, body: Any = None) -> Any:
        resp = await self.gateway.request(method, f"{SCIM}{path}", json=body)
        assert resp.status < 300, (method, path, resp.status, await resp.text())
        return None if resp.status == 204 else await resp.json()

    async def user(self, name: str, **extra: Any) -> str:
        body = {"schemas": [USER_URN], "userName": name, "active": True, **extra}
        created = await self.scim("POST", "/Users", body)
        return str(created["id"])

    async def settle(self) -> None:
        """Commit what the gateway queued (ledger notes, audit closes)."""
        service = self.gateway.app[SERVICES]["acme"].service
        if service.ledger is not None:
            await service.ledger.flush()
        recorder = self.gateway.app.get(RECORDER)
        if isinstance(recorder, AuditRecorder):
            await recorder.flush()

    async def cli(self, *args: str) -> tuple[int, str]:
        """Run ``scim-gateway`` on this config in a thread (it runs its own event loop)."""
        return await asyncio.to_thread(run_cli, [*args, "-c", str(self.config)])


def run_cli(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def write_config(tmp_path: Path, acme_url: str, **app: Any) -> Path:
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    rest["base_url"] = acme_url
    rest["auth"]["key"] = ACME_KEY
    raw = {
        "apps": {
            "acme": {
                "adapter": "rest",
                "mapping": str(MAPPINGS_DIR / "acme-hr"),
                "settings": rest,
                "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                **app,
            }
        },
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "admin": {
            "tokens": [
                {"name": "root-token", "sha256": digest(ADMIN_TOKEN)},
                {"name": "watcher", "sha256": digest(OPERATOR_TOKEN), "read_only": True},
            ],
            "basic": [{"name": "alice", "username": "alice", "password": ADMIN_PASSWORD}],
        },
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), "utf-8")
    return path


AppOptions = dict[str, Any]


@pytest.fixture
def app_options() -> AppOptions:
    """Per-test additions to the app's config (a module overrides it)."""
    return {}


@pytest.fixture
async def setup(
    tmp_path: Path,
    aiohttp_server: Callable[..., Any],
    aiohttp_client: Callable[..., Any],
    app_options: AppOptions,
) -> AsyncIterator[Setup]:
    legacy: TestServer = await aiohttp_server(create_legacy_app(":memory:", ACME_KEY))
    acme_url = str(legacy.make_url("/api/v1"))
    config = write_config(tmp_path, acme_url, **app_options)
    settings = load_settings(config)
    client: Client = await aiohttp_client(
        create_app(settings, source=str(config)), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    async with aiohttp.ClientSession(headers={"X-Api-Key": ACME_KEY}) as http:
        yield Setup(config, client, Acme(http, acme_url), legacy)


# -- the browser ----------------------------------------------------------------------------

ARTIFACTS = Path(__file__).parent.parent.parent / "test-artifacts" / "console"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test, so the page fixture knows it failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "no chromium: ./dev test installs Debian's package (apt-get install chromium)"
    return found


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        # Root in a container: chromium's sandbox needs user namespaces it may not have.
        launched = await pw.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    """A fresh browser context; a screenshot in test-artifacts/console/ when the test fails."""
    context = await browser.new_context(viewport={"width": 1400, "height": 800})
    opened = await context.new_page()
    opened.set_default_timeout(10_000)
    try:
        yield opened
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / f"{request.node.name}.png"
            await opened.screenshot(path=str(shot), full_page=True)
        await context.close()
