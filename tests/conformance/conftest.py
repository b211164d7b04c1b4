"""Real gateway processes on loopback ports, for third-party conformance tools.

``live_gateway`` serves one app on the memory adapter. ``acme_gateway`` and
``redmine_gateway`` serve one app on the REST adapter, configured exactly as
``mappings/<app>/rest.yaml`` says (its ``${env:...}`` references resolved from the
gateway process's environment) with ``mappings/<app>`` as the mapping: in front of
Acme HR (the demo legacy app, its own process) and of a real Redmine of their own
(tests/e2e/redmine.py). The tools list a collection and look for what they created on
the first page, so they get an app that holds only what they make, not the session's
shared Redmine.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.redmine import Redmine, running_redmine
from support import digest

from gateway.mapping.engine import MAPPINGS_DIR

TOKEN = "conformance-token-5f1c0d2e"
ACME_HR_KEY = "acme-conformance-key-7d31"


@dataclass(frozen=True)
class LiveGateway:
    base_url: str  # .../apps/<app>/scim/v2
    token: str


@dataclass(frozen=True)
class AcmeHr:
    """The Acme HR process: its API root (``.../api/v1``) and key."""

    api_url: str
    api_key: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(
    port: int, proc: subprocess.Popen[bytes], path: str = "/readyz", timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                if b" 200 " in sock.recv(64):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{proc.args!r} did not become ready")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def _serve(
    folder: Path, app: str, app_config: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> Iterator[LiveGateway]:
    """``scim-gateway serve`` with one app, in its own process, until the block ends."""
    port = _free_port()
    config = {
        "server": {"host": "127.0.0.1", "port": port},
        "apps": {
            app: {
                **app_config,
                "auth": {"tokens": [{"name": "tester", "sha256": digest(TOKEN)}]},
                # scim-sanity insists on 200 with a body for every PATCH.
                "group_patch_response": "resource",
            }
        },
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
    )
    try:
        _wait_ready(port, proc)
        yield LiveGateway(f"http://127.0.0.1:{port}/apps/{app}/scim/v2", TOKEN)
    finally:
        _stop(proc)


def rest_app(mapping: str) -> dict[str, Any]:
    """An app on the REST adapter: ``mappings/<mapping>/rest.yaml`` as its settings."""
    settings = yaml.safe_load((MAPPINGS_DIR / mapping / "rest.yaml").read_text("utf-8"))
    return {"adapter": "rest", "mapping": mapping, "settings": settings}


@pytest.fixture(scope="module")
def live_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    with _serve(tmp_path_factory.mktemp("gateway"), "conformance", {"adapter": "memory"}) as gw:
        yield gw


@pytest.fixture(scope="module")
def acme_hr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AcmeHr]:
    """Acme HR as its own process (``python -m gateway.demo.legacy_app``) on a free port."""
    port = _free_port()
    db = tmp_path_factory.mktemp("acme-hr") / "acme.sqlite"
    args = ["--port", str(port), "--db", str(db), "--api-key", ACME_HR_KEY]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.demo.legacy_app", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(port, proc, "/healthz")
        yield AcmeHr(f"http://127.0.0.1:{port}/api/v1", ACME_HR_KEY)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def acme_gateway(
    tmp_path_factory: pytest.TempPathFactory, acme_hr: AcmeHr
) -> Iterator[LiveGateway]:
    env = {"ACME_HR_URL": acme_hr.api_url, "ACME_HR_API_KEY": acme_hr.api_key}
    with _serve(tmp_path_factory.mktemp("gateway"), "acme", rest_app("acme-hr"), env) as gw:
        yield gw


@pytest.fixture(scope="module")
def own_redmine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redmine]:
    """A Redmine for this module alone (skipped where Redmine cannot run, failed in CI)."""
    with running_redmine(tmp_path_factory.mktemp("redmine")) as server:
        yield server


@pytest.fixture(scope="module")
def redmine_gateway(
    tmp_path_factory: pytest.TempPathFactory, own_redmine: Redmine
) -> Iterator[LiveGateway]:
    env = own_redmine.env
    with _serve(tmp_path_factory.mktemp("gateway"), "redmine", rest_app("redmine"), env) as gw:
        yield gw
