"""A disk-full episode on the SQLite store (issue 13, item 3): closes are retried.

A real ``scim-gateway serve`` in a subprocess, its file size limit lowered from
outside (``prlimit``) so every write to the state file fails with EFBIG ("database
or disk is full"), exactly as on a full disk. Creates whose pending event was
stored before the fault finish during it (answered 201), reads are answered
during it; once the limit is lifted, every one of them is closed in the trail,
the chain verifies, and the episode was logged once, not once per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from state.test_crash import LEGACY_KEY, audit_list, start, write_config
from support import TOKEN

from bench.servers import free_port
from gateway.demo.legacy_app import create_legacy_app

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="prlimit is Linux's")

CREATES, READS = 6, 5
USERS = "/apps/acme/scim/v2/Users"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"


class HeldPosts:
    """A middleware that holds every POST until released, counting those waiting."""

    def __init__(self) -> None:
        self.waiting = 0
        self.release = asyncio.Event()

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.method == "POST":
            self.waiting += 1
            await self.release.wait()
        return await handler(request)


@pytest.fixture
async def legacy(aiohttp_server: Callable[..., Any]) -> AsyncIterator[tuple[HeldPosts, str]]:
    held = HeldPosts()
    app = create_legacy_app(":memory:", LEGACY_KEY)
    app.middlewares.insert(0, held.middleware)
    server: TestServer = await aiohttp_server(app)
    yield held, str(server.make_url("/api/v1"))
    held.release.set()


def file_limit(pid: int, limit: int) -> None:
    _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))


async def until(check: Callable[[], Any], seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


def _record_reads(config: Path) -> None:
    """This test counts the reads too: make them events (``audit.reads`` is "none" by default)."""
    data = json.loads(config.read_text("utf-8"))
    data["state"]["audit"] = {"reads": "all"}
    config.write_text(json.dumps(data), "utf-8")


async def test_every_create_answered_2xx_during_a_disk_full_episode_is_closed_after_it(
    legacy: tuple[HeldPosts, str], tmp_path: Path
) -> None:
    held, legacy_url = legacy
    port = free_port()
    config = write_config(tmp_path, legacy_url, f"sqlite:///{tmp_path / 'state.db'}", port)
    _record_reads(config)
    proc = await start(config, port)
    assert proc.pid is not None
    base = f"http://127.0.0.1:{port}{USERS}"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with asyncio.timeout(120), aiohttp.ClientSession(headers=headers) as session:

            async def create(i: int) -> int:
                body = {"schemas": [SCHEMA], "userName": f"u{i}@example.com"}
                body["name"] = {"givenName": "U", "familyName": str(i)}
                body["emails"] = [{"value": f"u{i}@example.com", "primary": True}]
                async with session.post(base, json=body) as resp:
                    return resp.status

            async def read() -> int:
                async with session.get(base) as resp:
                    return resp.status

            creating = [asyncio.create_task(create(i)) for i in range(CREATES)]

            async def all_held() -> bool:
                return held.waiting == CREATES

            await until(all_held)  # every pending event is stored: the legacy call is made
            file_limit(proc.pid, 1)  # the disk is "full" from here on
            assert await asyncio.gather(*(read() for _ in range(READS))) == [200] * READS
            held.release.set()
            assert await asyncio.gather(*creating) == [201] * CREATES
            during = await audit_list(config)
            assert [e for e in during if e["outcome"] == "success"] == []

            file_limit(proc.pid, resource.RLIM_INFINITY)

            async def all_closed() -> bool:
                found = await audit_list(config)
                return len([e for e in found if e["outcome"] == "success"]) == CREATES + READS

            await until(all_closed)
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(proc.wait(), 20)
        if proc.returncode is None:
            proc.kill()
    found = await audit_list(config)
    creates = [e for e in found if e["operation"] == "create"]
    assert sorted(e["name"] for e in creates) == sorted(f"u{i}@example.com" for i in range(CREATES))
    assert {(e["outcome"], e["status"]) for e in creates} == {("success", 201)}
    assert len([e for e in found if e["operation"] == "list"]) == READS
    verify = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "audit", "verify", "-c", str(config)
    )
    assert await verify.wait() == 0
    json.dumps(found)  # readable as it was stored
