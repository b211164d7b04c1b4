"""A replica paused past its lease (issue 13, item 4): ``kill -STOP``, then ``-CONT``.

Two ``scim-gateway serve`` processes share one store with ``lease_seconds: 1``.
The first holds creates in flight (their pending events stored, the legacy app
holding the POSTs) when it is stopped; the second marks those events ``unknown``.
On resuming, the first logs that its lease was lost, takes a new one, and each
create it answers 201 is recorded with that outcome, next to the ``unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from asyncio.subprocess import DEVNULL
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from resilience.test_audit_disk_full import CREATES, SCHEMA, USERS, HeldPosts, legacy, until
from state.test_crash import audit_list, start, write_config
from support import TOKEN

from bench.servers import free_port, gateway_command

__all__ = ["legacy"]  # the fixture, shared

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="SIGSTOP")


def lease_of(config: Path, seconds: float) -> None:
    raw = json.loads(config.read_text("utf-8"))
    raw["state"]["lease_seconds"] = seconds
    raw["log_level"] = "WARNING"
    config.write_text(json.dumps(raw), "utf-8")


async def test_a_paused_replica_retakes_its_lease_and_records_the_real_outcomes(
    legacy: tuple[HeldPosts, str], tmp_path: Path
) -> None:
    held, legacy_url = legacy
    state = f"sqlite:///{tmp_path / 'state.db'}"
    ports = free_port(), free_port()
    configs = []
    for i, port in enumerate(ports):
        folder = tmp_path / f"g{i}"
        folder.mkdir()
        configs.append(write_config(folder, legacy_url, state, port))
        lease_of(configs[-1], 1)
    log_file = tmp_path / "paused.log"
    with log_file.open("w") as err:
        paused = await start_logged(configs[0], ports[0], err)
    other = await start(configs[1], ports[1])
    try:
        async with (
            asyncio.timeout(90),
            aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session,
        ):

            async def create(i: int) -> int:
                body: dict[str, Any] = {"schemas": [SCHEMA], "userName": f"p{i}@example.com"}
                body["name"] = {"givenName": "P", "familyName": str(i)}
                body["emails"] = [{"value": f"p{i}@example.com", "primary": True}]
                async with session.post(f"http://127.0.0.1:{ports[0]}{USERS}", json=body) as r:
                    return r.status

            creating = [asyncio.create_task(create(i)) for i in range(CREATES)]

            async def all_held() -> bool:
                return held.waiting == CREATES

            await until(all_held)
            os.kill(paused.pid, signal.SIGSTOP)

            async def recovered() -> bool:
                found = await audit_list(configs[1])
                return len([e for e in found if e["outcome"] == "unknown"]) == CREATES

            await until(recovered)
            os.kill(paused.pid, signal.SIGCONT)
            held.release.set()
            assert await asyncio.gather(*creating) == [201] * CREATES

            async def all_closed() -> bool:
                found = await audit_list(configs[1])
                return len([e for e in found if e["outcome"] == "success"]) == CREATES

            await until(all_closed)
    finally:
        for proc in (paused, other):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)
                proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 20)
            if proc.returncode is None:
                proc.kill()
    found = await audit_list(configs[1])
    for i in range(CREATES):
        mine = [e for e in found if e["name"] == f"p{i}@example.com"]
        assert sorted(e["outcome"] for e in mine) == ["success", "unknown"]
        late = next(e for e in mine if e["outcome"] == "success")
        assert late["extra"]["finalizes"] == next(e for e in mine if e is not late)["event_id"]
    assert "lease" in log_file.read_text() and "lost" in log_file.read_text()


async def start_logged(config: Path, port: int, err: Any) -> asyncio.subprocess.Process:
    """``scim-gateway serve`` with its log lines going to ``err``, once ready."""
    proc = await asyncio.create_subprocess_exec(
        *gateway_command(), "serve", "--config", str(config), stdin=DEVNULL, stderr=err
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(600):
            assert proc.returncode is None, f"the gateway exited with {proc.returncode}"
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                    if resp.status == 200:
                        return proc
            await asyncio.sleep(0.1)
    proc.kill()
    raise AssertionError("the gateway did not become ready")
