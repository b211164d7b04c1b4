"""The two servers under test, as subprocesses on loopback, and the gateway's seeding.

Every child runs in its own session (process group), so a Ctrl-C at the
terminal reaches only the bench, which then stops each child itself:
SIGTERM to the group, and SIGKILL if it has not exited within a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.scenarios import SCIM_JSON, Scenario, rendered, seed_user_name, user_body

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
APP = "bench"
BASE_PATH = f"/apps/{APP}/scim/v2"

#: Environment variables that slow a Python server down and are dropped from its environment.
_SLOW_ENV = ("PYTHONDEVMODE", "PYTHONASYNCIODEBUG", "PYTHONTRACEMALLOC", "PYTHONPROFILEIMPORTTIME")


class ServerError(RuntimeError):
    """A server did not start or did not answer as expected."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def make_token() -> tuple[str, str]:
    """A fresh bearer token and its SHA-256 hex digest (what the config holds)."""
    token = secrets.token_urlsafe(32)
    return token, hashlib.sha256(token.encode()).hexdigest()


def pin_prefix(cpus: Collection[int] | None) -> list[str]:
    """``taskset -c ...`` when pinning is asked for and taskset exists, else nothing."""
    if not cpus:
        return []
    taskset = shutil.which("taskset")
    if taskset is None:
        return []
    return [taskset, "-c", ",".join(str(c) for c in sorted(cpus))]


def spawn(
    cmd: Sequence[str],
    *,
    cpus: Collection[int] | None,
    stdout: IO[Any] | int | None,
    stderr: IO[Any] | int | None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group, pinned to ``cpus`` if given."""
    prefix = pin_prefix(cpus)
    proc = subprocess.Popen(
        [*prefix, *cmd],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    if cpus and not prefix:
        # No taskset: pin the (still single-threaded) child directly.
        with contextlib.suppress(OSError):
            os.sched_setaffinity(proc.pid, set(cpus))
    return proc


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop ``proc`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds.

    Signals go to the group only while its leader is alive and unreaped, so a
    recycled process id is never signalled.
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SLOW_ENV}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


@dataclass
class Server:
    """One running server subprocess."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def base_url(self) -> str:
        return self.origin + BASE_PATH

    def stop(self) -> None:
        stop(self.proc)

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log.read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_ready(server: Server, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    url = server.origin + path
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise ServerError(
                f"{server.name} exited with status {server.proc.returncode} before it was ready:\n"
                + server.log_tail()
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.05)
    raise ServerError(f"{server.name} was not ready within {timeout:.0f} s:\n{server.log_tail()}")


def _start(
    name: str,
    make_cmd: Callable[[int], list[str]],
    ready_path: str,
    workdir: Path,
    cpus: Collection[int] | None,
    attempts: int = 3,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> Server:
    """Start a server on a free port, retrying on another port if it fails to come up.

    ``env``: the child's environment (default: :func:`server_env`).
    """
    last: ServerError | None = None
    for attempt in range(attempts):
        port = free_port()
        log = workdir / f"{name}-{attempt}.log"
        with log.open("wb") as out:
            cmd = make_cmd(port)
            proc = spawn(
                cmd, cpus=cpus, stdout=out, stderr=subprocess.STDOUT, env=env or server_env()
            )
        server = Server(name, proc, port, log)
        try:
            _wait_ready(server, ready_path, timeout)
            return server
        except BaseException as exc:
            server.stop()
            if not isinstance(exc, ServerError):
                raise
            last = exc
    assert last is not None
    raise last


def gateway_command() -> list[str]:
    script = Path(sys.executable).parent / "scim-gateway"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gateway.cli"]


def write_gateway_config(
    workdir: Path, digest: str, port: int, state: dict[str, Any] | None = None
) -> Path:
    """A temporary gateway config: one app on the memory adapter, our token's digest.

    The shipped defaults otherwise: the access log on (``log_level: INFO``, into
    the server's log file) and, with no ``state`` section, the audit trail in a
    SQLite file beside the config, as a served gateway has it.
    """
    config: dict[str, Any] = {
        "server": {"host": HOST, "port": port},
        "log_level": "INFO",
        "apps": {
            APP: {
                "adapter": "memory",
                # POSTs keep adding users; keep the adapter's demo limit out of the way.
                "settings": {"max_resources": 10_000_000},
                "auth": {"tokens": [{"name": "bench", "sha256": digest}]},
            }
        },
    }
    if state is not None:
        config["state"] = state
    path = workdir / f"gateway-{port}.yaml"
    path.write_text(json.dumps(config, indent=2), "utf-8")  # JSON is YAML
    return path


def start_gateway(
    workdir: Path,
    digest: str,
    cpus: Collection[int] | None,
    env: dict[str, str] | None = None,
    name: str = "gateway",
    *,
    state: dict[str, Any] | None = None,
) -> Server:
    """``env``: extra environment variables (the tracing suite's ``OTEL_*``);
    ``state``: the config's ``state:`` section (the audit suite)."""

    def cmd(port: int) -> list[str]:
        config = write_gateway_config(workdir, digest, port, state)
        return [*gateway_command(), "serve", "--config", str(config)]

    child_env = {**server_env(), **(env or {})}
    return _start(name, cmd, "/readyz", workdir, cpus, env=child_env)


def start_baseline(workdir: Path, bodies: dict[str, Any], cpus: Collection[int] | None) -> Server:
    path = workdir / "baseline-bodies.json"
    path.write_text(json.dumps(bodies), "utf-8")

    def cmd(port: int) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.baseline",
            "--port",
            str(port),
            "--bodies",
            str(path),
            "--base-path",
            BASE_PATH,
        ]

    return _start("baseline", cmd, "/healthz", workdir, cpus)


# -- seeding and capturing the gateway's answers -------------------------------------------


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": SCIM_JSON}


async def _seed(base_url: str, token: str, count: int, concurrency: int = 8) -> list[str]:
    headers = {**auth_headers(token), "Content-Type": SCIM_JSON}
    ids: list[str | None] = [None] * count
    queue = iter(range(count))

    async with aiohttp.ClientSession(headers=headers) as session:

        async def worker() -> None:
            for i in queue:
                body = user_body(seed_user_name(i), f"Seed{i}", "User")
                async with session.post(f"{base_url}/Users", data=body.encode()) as resp:
                    data = await resp.json(content_type=None)
                    if resp.status != 201:
                        raise ServerError(f"seeding user {i}: HTTP {resp.status}: {data}")
                    ids[i] = data["id"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [i for i in ids if i is not None]


def seed_users(base_url: str, token: str, count: int) -> list[str]:
    """Create ``count`` users through the SCIM API; their ids in creation order."""
    return asyncio.run(_seed(base_url, token, count))


async def _capture(
    base_url: str, token: str, scenarios: Sequence[Scenario], ids: Sequence[str]
) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers=auth_headers(token)) as session:
        for scenario in scenarios:
            values: dict[str, str | int] = {"prefix": "sample", "tid": 0, "n": 0, "id": ids[0]}
            path, data = rendered(scenario, values)
            url = base_url + path
            headers = {} if data is None else {"Content-Type": SCIM_JSON}
            async with session.request(scenario.method, url, data=data, headers=headers) as resp:
                body = await resp.json(content_type=None)
                if resp.status != scenario.status:
                    raise ServerError(
                        f"{scenario.label}: the gateway answered {resp.status}, "
                        f"expected {scenario.status}: {body}"
                    )
                kept = {k: resp.headers[k] for k in ("ETag", "Location") if k in resp.headers}
                answers[scenario.key] = {"status": resp.status, "headers": kept, "body": body}
    return answers


def capture_answers(
    base_url: str, token: str, scenarios: Sequence[Scenario], ids: Sequence[str]
) -> dict[str, Any]:
    """Send each scenario's request once; check its status and keep the gateway's answer.

    The answers become the baseline's fixed responses, so both servers send
    the same bytes.
    """
    return asyncio.run(_capture(base_url, token, scenarios, ids))


async def _count_users(base_url: str, token: str) -> int:
    async with (
        aiohttp.ClientSession(headers=auth_headers(token)) as session,
        session.get(f"{base_url}/Users?count=0") as resp,
    ):
        data = await resp.json(content_type=None)
        return int(data["totalResults"])


def count_users(base_url: str, token: str) -> int:
    return asyncio.run(_count_users(base_url, token))
