"""A real gateway process on a loopback port, for third-party conformance tools."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from support import digest

TOKEN = "conformance-token-5f1c0d2e"


@dataclass(frozen=True)
class LiveGateway:
    base_url: str  # .../apps/<app>/scim/v2
    token: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                if b" 200 " in sock.recv(64):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("gateway did not become ready")


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    port = _free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "apps": {
            "conformance": {
                "adapter": "memory",
                "auth": {"tokens": [{"name": "tester", "sha256": digest(TOKEN)}]},
                # scim-sanity insists on 200 with a body for every PATCH.
                "group_patch_response": "resource",
            }
        },
    }
    path: Path = tmp_path_factory.mktemp("gateway") / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_ready(port, proc)
        yield LiveGateway(f"http://127.0.0.1:{port}/apps/conformance/scim/v2", TOKEN)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
