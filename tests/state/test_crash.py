"""SIGKILL the gateway while a legacy call is in flight: after a restart the event is "unknown".

The gateway runs as ``scim-gateway serve`` in a subprocess, on the REST adapter
with the Acme HR mapping, in front of a loopback legacy app that holds every
POST open until the test ends. The trail is read back with
``scim-gateway audit list --format jsonl``, as an operator would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from support import TOKEN, digest

from bench.servers import free_port, gateway_command
from gateway.mapping.engine import MAPPINGS_DIR

LEGACY_KEY = "legacy-api-key-0123456789"


class HeldLegacyApp:
    """Accepts account POSTs and holds them open; lists are empty."""

    def __init__(self) -> None:
        self.received = asyncio.Event()
        self.release = asyncio.Event()

    async def create(self, request: web.Request) -> web.Response:
        await request.read()
        self.received.set()
        await self.release.wait()
        return web.json_response({"error": "released at the end of the test"}, status=503)

    async def search(self, request: web.Request) -> web.Response:
        return web.json_response({"items": [], "total": 0})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/accounts", self.create)
        app.router.add_get("/api/v1/accounts", self.search)
        return app


@pytest.fixture
async def held(aiohttp_server: Callable[..., Any]) -> AsyncIterator[tuple[HeldLegacyApp, str]]:
    legacy = HeldLegacyApp()
    server: TestServer = await aiohttp_server(legacy.app())
    yield legacy, str(server.make_url("/api/v1"))
    legacy.release.set()


def write_config(tmp_path: Path, legacy_url: str, state_url: str, port: int) -> Path:
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    rest["base_url"] = legacy_url
    rest["auth"]["key"] = LEGACY_KEY
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "log_level": "WARNING",
        "apps": {
            "acme": {
                "adapter": "rest",
                "mapping": str(MAPPINGS_DIR / "acme-hr"),
                "settings": rest,
                "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
            }
        },
        # A long lease on purpose: SQLite sees the dead pid at once, PostgreSQL waits it out.
        "state": {"url": state_url, "lease_seconds": 3 if "postgres" in state_url else 60},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(json.dumps(config), "utf-8")
    return path


async def start(config: Path, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *gateway_command(), "serve", "--config", str(config), stdin=asyncio.subprocess.DEVNULL
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            if proc.returncode is not None:
                raise AssertionError(f"the gateway exited with {proc.returncode}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return proc
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not become ready")


async def audit_list(config: Path) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "gateway.cli", "audit", "list", "-c", str(config)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "--format", "jsonl", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_sigkill_during_a_legacy_call_leaves_an_unknown_event(
    held: tuple[HeldLegacyApp, str], state_url: str, tmp_path: Path
) -> None:
    legacy, legacy_url = held
    port = free_port()
    config = write_config(tmp_path, legacy_url, state_url, port)
    gateway = await start(config, port)
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "grace@example.com",
        "name": {"givenName": "Grace", "familyName": "Hopper"},
        "emails": [{"value": "grace@example.com", "type": "work", "primary": True}],
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        url = f"http://127.0.0.1:{port}/apps/acme/scim/v2/Users"
        pending = asyncio.create_task(session.post(url, json=body))
        await asyncio.wait_for(legacy.received.wait(), 30)
        os.kill(gateway.pid, signal.SIGKILL)
        assert await gateway.wait() == -signal.SIGKILL
        with pytest.raises(aiohttp.ClientError):
            await pending

    restarted = await start(config, port)
    try:
        for _ in range(300):  # PostgreSQL: until the dead process's lease has run out
            events = await audit_list(config)
            if events and events[0]["outcome"] != "pending":
                break
            await asyncio.sleep(0.2)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await restarted.wait()
    creates = [e for e in events if e["operation"] == "create"]
    assert len(creates) == 1
    assert creates[0]["outcome"] == "unknown"
    assert creates[0]["name"] == "grace@example.com"
    assert creates[0]["client"] == "idp"
    assert creates[0]["seq"] == 1

    cmd = [sys.executable, "-m", "gateway.cli", "audit", "verify", "-c", str(config)]
    verify = await asyncio.create_subprocess_exec(*cmd, stdout=asyncio.subprocess.PIPE)
    out, _ = await verify.communicate()
    assert verify.returncode == 0, out
    assert out.startswith(b"OK")
