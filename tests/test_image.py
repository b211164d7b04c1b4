"""The image run without Docker: deploy/Dockerfile's final stage, laid out and started.

The final stage is read from the Dockerfile itself (its RUN that makes the user and
/data, COPY, WORKDIR, ENV, USER, ENTRYPOINT, CMD, HEALTHCHECK), laid out in a
temporary root and bind-mounted at the image's own paths (/srv/scim-gateway, /data,
/opt/venv) inside a private mount namespace (``unshare --mount``), so nothing on the
machine changes. /opt/venv is the test run's own virtualenv (the image builds the
same package into it). The ENTRYPOINT and CMD then run as uid 10001 with the image's
ENV and nothing else but the config's secrets, against a real Acme HR and a real
PostgreSQL (a database of this run's own) on loopback.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from security.test_tls import self_signed
from sql.pg import create_payroll, postgres_server

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = REPO / "deploy" / "Dockerfile"
#: The PATH of the python base image, which the Dockerfile's ENV extends.
LEGACY_APP = [sys.executable, "-m", "gateway.demo.legacy_app"]
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"),
    reason="needs root (a mount namespace and another uid); CI runs as root",
)


@dataclass
class Stage:
    """What the Dockerfile's final stage does, as read from it."""

    runs: list[str] = field(default_factory=list)
    #: (source, destination); a source from the build stage is written "build:/path".
    copies: list[tuple[str, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = "root"
    volumes: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def final_stage(text: str) -> Stage:
    lines = re.sub(r"\\\n", " ", text).splitlines()
    body = [line.strip() for line in lines[_last_from(lines) + 1 :]]
    stage, entrypoint, cmd = Stage(), [], []
    for line in body:
        word, _, rest = line.partition(" ")
        if word == "RUN":
            stage.runs.append(rest)
        elif word == "COPY":
            *sources, dest = rest.split()
            built = sources[0].startswith("--from=")  # from the build stage: the venv
            stage.copies += [("build:" + src if built else src, dest) for src in sources[built:]]
        elif word == "ENV":
            stage.env.update(re.findall(r"(\w+)=(\S+)", rest))
        elif word == "WORKDIR":
            stage.workdir = rest
        elif word == "USER":
            stage.user = rest
        elif word == "VOLUME":
            stage.volumes.append(rest)
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif word == "CMD":
            cmd = json.loads(rest)
        elif word == "HEALTHCHECK":
            stage.healthcheck = json.loads(rest.split(" CMD ", 1)[1])
    stage.command = entrypoint + cmd
    return stage


def _last_from(lines: list[str]) -> int:
    return max(i for i, line in enumerate(lines) if line.startswith("FROM "))


def lay_out(stage: Stage, root: Path, venv: Path) -> None:
    """The image's filesystem under ``root``: the COPYs, /data for its user, /opt/venv."""
    uid, gid = (int(n) for n in stage.user.split(":"))
    for run in stage.runs:
        if "mkdir /data && chown scim:scim /data" in run:
            (root / "data").mkdir()
            os.chown(root / "data", uid, gid)
    for source, dest in stage.copies:
        if source.startswith("build:"):
            assert (source, dest) == ("build:/opt/venv", "/opt/venv")
            (root / "opt").mkdir()
            (root / "opt" / "venv").symlink_to(venv)
            continue
        target = root / Path(stage.workdir, dest).relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if (REPO / source).is_dir():
            shutil.copytree(REPO / source, target)
        else:
            shutil.copy(REPO / source, target)
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)  # as COPY leaves them: root's, readable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def payroll_database() -> Iterator[str]:
    """A database of this run's own holding the payroll sample in schema ``payroll``
    (as compose's initdb script makes it; the shipped settings name that schema)."""
    with postgres_server() as server:
        name = f"scimgw_image_{secrets.token_hex(4)}"
        asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
        dsn = with_database(server, name)
        try:
            asyncio.run(create_payroll(dsn, "payroll"))
            yield dsn
        finally:
            asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def acme_hr(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Acme HR, the demo legacy REST app, as compose runs it (its own entry point)."""
    key, port = secrets.token_hex(16), free_port()
    proc = subprocess.Popen(
        [*LEGACY_APP, "--port", str(port), "--db", str(tmp_path / "acme.sqlite"), "--api-key", key],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", {})
        yield f"http://127.0.0.1:{port}/api/v1", key
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def wait_for(
    url: str,
    headers: dict[str, str],
    seconds: float = 60,
    proc: subprocess.Popen[str] | None = None,
) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended ({proc.returncode}):\n{out}\n{err}")
        try:
            with urllib.request.urlopen(
                urllib.request.Request(url, headers=headers), timeout=2
            ) as r:
                answer: dict[str, object] = json.loads(r.read())
                return answer
        except (OSError, urllib.error.HTTPError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def image_root() -> Iterator[Path]:
    """A temporary root other users can read (uid 10001 reads the config and mappings)."""
    root = Path(tempfile.mkdtemp(prefix="scim-image-"))
    yield root
    shutil.rmtree(root)


def ways_through(root: Path, needed: list[Path]) -> list[str]:
    """Mounts that let another user reach ``needed`` inside the namespace.

    The test's Python may live under a folder closed to others (pyenv in /root): that
    folder is covered by an open one holding only the way through, as the image has
    its Python in the open /usr/local. Nothing changes outside the namespace.
    """
    children: dict[Path, set[str]] = {}
    for path in needed:
        closed = [p for p in reversed(path.parents) if p != Path("/") and not p.stat().st_mode & 1]
        if closed:
            children.setdefault(closed[0], set()).add(path.relative_to(closed[0]).parts[0])
    mounts = []
    for folder, names in children.items():
        cover = root / "open" / folder.relative_to("/")
        for name in sorted(names):
            (cover / name).mkdir(parents=True)
            mounts.append(f"mount --bind {folder / name} {cover / name}")
        for part in [cover, *cover.parents]:
            if part == root:
                break
            part.chmod(0o755)
        mounts.append(f"mount --rbind {cover} {folder}")  # with the binds inside it
    return mounts


def in_the_image(root: Path, stage: Stage, command: list[str], env: dict[str, str]) -> list[str]:
    """``command`` run as the image's user, at the image's paths, with only ``env``."""
    uid, gid = stage.user.split(":")
    needed = [Path(sys.base_prefix), Path(sys.prefix).resolve(), REPO]
    image = [f"mount --bind {root / name} /{name}" for name in ("srv", "opt", "data")]
    mounts = " && ".join(image + ways_through(root, needed))
    inner = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "env", "-i"]
    inner += [f"{k}={v}" for k, v in env.items()] + command
    script = f'{mounts} && cd {stage.workdir} && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *inner]


def test_the_image_starts_as_uid_10001_with_its_state_in_data(
    image_root: Path, payroll_database: str, acme_hr: tuple[str, str]
) -> None:
    stage = final_stage(DOCKERFILE.read_text("utf-8"))
    assert stage.user == "10001:10001" and "/data" in stage.volumes
    assert stage.command == ["scim-gateway", "serve"]
    lay_out(stage, image_root, Path(sys.prefix))
    Path("/data").mkdir(exist_ok=True)  # the mount point; the image's /data is mounted on it
    Path("/srv").mkdir(exist_ok=True)
    token, port = secrets.token_urlsafe(32), free_port()
    env = {k: v.replace("$PATH", BASE_PATH) for k, v in stage.env.items()}
    env |= {
        "SCIM_GATEWAY_PORT": str(port),  # the image's 8080 may be taken on a shared machine
        "SCIM_TOKEN": token,
        "ACME_HR_URL": acme_hr[0],
        "ACME_HR_API_KEY": acme_hr[1],
        "PAYROLL_DSN": payroll_database,
    }
    proc = subprocess.Popen(
        in_the_image(image_root, stage, stage.command, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = wait_for(f"http://127.0.0.1:{port}/readyz", {}, proc=proc)
        assert ready["apps"] == {"acme": True, "payroll": True}
        health = subprocess.run(
            [
                "nsenter",
                f"--target={proc.pid}",
                "--mount",
                *_as_user(stage, env),
                *stage.healthcheck,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert health.returncode == 0, health.stderr
        users = wait_for(
            f"http://127.0.0.1:{port}/apps/payroll/scim/v2/Users?count=1",
            {"Authorization": f"Bearer {token}"},
        )
        assert users["totalResults"] == 0
        state = image_root / "data" / "scim-gateway-state.db"
        assert state.is_file() and state.stat().st_uid == 10001
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert out.splitlines()[0].startswith("scim-gateway ") and f":{port} (pid " in out
    assert "Traceback" not in err and token not in out + err


def _as_user(stage: Stage, env: dict[str, str]) -> list[str]:
    uid, gid = stage.user.split(":")
    return [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        "--clear-groups",
        "env",
        "-i",
        *(f"{k}={v}" for k, v in env.items()),
    ]


def test_the_healthcheck_follows_the_configured_port_and_tls(tmp_path: Path) -> None:
    """The HEALTHCHECK command asks over https when the config serves TLS."""
    from gateway.cli import main

    cert, key = self_signed(tmp_path)
    config = tmp_path / "gateway.yaml"
    port = free_port()
    config.write_text(
        f"server: {{port: {port}, tls: {{cert: {cert}, key: {key}}}}}\n"
        "apps: {crm: {adapter: memory, auth: {tokens: [{name: t, secret: s3cret-t0ken-0123}]}}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "-c", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        assert f"https://127.0.0.1:{port}" in line, proc.stderr.read()
        assert main(["health", "-c", str(config)]) == 0
        assert main(["health", "-c", str(config), "--ready"]) == 0
        assert main(["health", "-c", str(config), "--port", str(free_port())]) == 1
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
