"""A real Redmine 5.0.4 (Debian packages, SQLite) on loopback, for end-to-end tests.

The session-scoped fixture ``redmine`` runs ``deploy/redmine/up.sh`` once per test
session in a temporary folder on a free port and ``down.sh`` at the end. Tests share
that one Redmine, so each must use its own names (``redmine.unique("alice")``) and
must not expect an empty database.

If Redmine cannot be installed or started here (no apt, no network to the Debian
mirror, not root, ...), the tests that use it are skipped with up.sh's reason;
with ``CI`` set (CI=true) the same failure fails them instead.

    async def test_something(redmine: Redmine) -> None:
        async with redmine.client() as rm:
            user = await rm.create_user(redmine.unique("alice"))
            assert (await rm.get_user(user["id"]))["status"] == 1
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn

import aiohttp
import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
UP = REPO / "deploy" / "redmine" / "up.sh"
DOWN = REPO / "deploy" / "redmine" / "down.sh"
#: A cold install is about 30 s here; leave room for a slow mirror.
UP_TIMEOUT = 900.0
#: up.sh's exit code for "the port was taken" (the free port was raced away).
PORT_IN_USE = 12

ACTIVE, REGISTERED, LOCKED = 1, 2, 3
StatusFilter = int | Literal["all"] | None


@dataclass(frozen=True)
class Reply:
    """One Redmine answer: status, JSON body (None when empty) and headers."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def errors(self) -> list[str]:
        """Redmine's 422 ``{"errors": [...]}`` list (full-message strings)."""
        if isinstance(self.body, dict):
            return list(self.body.get("errors", []))
        return []


class RedmineError(AssertionError):
    """An answer the helper did not expect (carries the reply for the message)."""

    def __init__(self, what: str, reply: Reply) -> None:
        super().__init__(f"{what}: HTTP {reply.status} {reply.body!r}")
        self.reply = reply


class RedmineClient:
    """Admin-key REST client for asserting Redmine's own state (aiohttp).

    Use as ``async with redmine.client() as rm``. ``request`` returns every answer
    as a ``Reply``; the helpers raise ``RedmineError`` on an unexpected status.
    """

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 30.0) -> None:
        self.base_url = base_url
        self._headers = {"X-Redmine-API-Key": api_key, "Accept": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> RedmineClient:
        self._session = aiohttp.ClientSession(
            base_url=self.base_url, headers=self._headers, timeout=self._timeout
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ raw
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send ``method path`` (e.g. ``"/users/5.json"``) with the admin key."""
        if self._session is None:
            raise RuntimeError("use 'async with redmine.client() as rm'")
        data = None
        sent = dict(headers or {})
        if json is not None:
            data = orjson.dumps(json)
            sent.setdefault("Content-Type", "application/json")
        async with self._session.request(
            method, path, data=data, params=params, headers=sent
        ) as resp:
            raw = await resp.read()
            try:
                body = orjson.loads(raw) if raw.strip() else None
            except orjson.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            return Reply(resp.status, body, dict(resp.headers))

    async def _expect(self, what: str, reply: Reply, *statuses: int) -> Reply:
        if reply.status not in statuses:
            raise RedmineError(what, reply)
        return reply

    # ---------------------------------------------------------------- users
    async def get_user(self, user_id: int, *, include: Iterable[str] = ()) -> dict[str, Any] | None:
        """``GET /users/:id.json`` (has ``status``; locked users too); None on 404."""
        params = {"include": ",".join(include)} if include else None
        reply = await self.request("GET", f"/users/{user_id}.json", params=params)
        if reply.status == 404:
            return None
        await self._expect(f"GET user {user_id}", reply, 200)
        return dict(reply.body["user"])

    async def list_users(
        self,
        *,
        status: StatusFilter = None,
        name: str | None = None,
        group_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """All pages of ``GET /users.json``.

        ``status=None`` sends no filter (Redmine then lists ACTIVE users only);
        ``"all"`` sends ``status=`` (every status); an int filters on it. ``name`` is
        Redmine's case-insensitive substring match on login, mail and names. The
        items carry no ``status``; use ``get_user`` for that.
        """
        params: dict[str, str | int] = {"limit": 100}
        if status is not None:
            params["status"] = "" if status == "all" else status
        if name is not None:
            params["name"] = name
        if group_id is not None:
            params["group_id"] = group_id
        users: list[dict[str, Any]] = []
        while True:
            params["offset"] = len(users)
            reply = await self.request("GET", "/users.json", params=params)
            await self._expect("GET users", reply, 200)
            page = reply.body["users"]
            users.extend(page)
            if not page or len(users) >= reply.body["total_count"]:
                return users

    async def find_user(self, login: str, *, status: StatusFilter = "all") -> dict[str, Any] | None:
        """The user whose login is exactly ``login`` (``name=`` is only a substring match)."""
        matches = [
            u for u in await self.list_users(status=status, name=login) if u["login"] == login
        ]
        return matches[0] if matches else None

    async def create_user(self, login: str, **fields: Any) -> dict[str, Any]:
        """``POST /users.json``; firstname, lastname, mail and password get defaults."""
        user = {
            "login": login,
            "firstname": "Test",
            "lastname": login,
            "mail": f"{login}@example.com",
            "password": "secret-password-1",
            **fields,
        }
        reply = await self.request("POST", "/users.json", json={"user": user})
        await self._expect(f"create user {login}", reply, 201)
        return dict(reply.body["user"])

    async def update_user(self, user_id: int, **fields: Any) -> Reply:
        return await self.request("PUT", f"/users/{user_id}.json", json={"user": fields})

    async def set_status(self, user_id: int, status: int) -> None:
        """1 active, 2 registered, 3 locked."""
        reply = await self.update_user(user_id, status=status)
        await self._expect(f"set status of user {user_id}", reply, 204)

    async def delete_user(self, user_id: int) -> Reply:
        return await self.request("DELETE", f"/users/{user_id}.json")

    # --------------------------------------------------------------- groups
    async def get_group(
        self, group_id: int, *, include: Iterable[str] = ("users",)
    ) -> dict[str, Any] | None:
        """``GET /groups/:id.json?include=users`` (members as ``{"id","name"}``); None on 404."""
        params = {"include": ",".join(include)} if include else None
        reply = await self.request("GET", f"/groups/{group_id}.json", params=params)
        if reply.status == 404:
            return None
        await self._expect(f"GET group {group_id}", reply, 200)
        return dict(reply.body["group"])

    async def member_ids(self, group_id: int) -> set[int]:
        group = await self.get_group(group_id)
        if group is None:
            raise AssertionError(f"group {group_id} does not exist")
        return {int(u["id"]) for u in group.get("users", [])}

    async def list_groups(self) -> list[dict[str, Any]]:
        """``GET /groups.json``: every group, unpaginated and unfiltered."""
        reply = await self.request("GET", "/groups.json")
        await self._expect("GET groups", reply, 200)
        return list(reply.body["groups"])

    async def create_group(self, name: str, user_ids: Iterable[int] = ()) -> dict[str, Any]:
        group: dict[str, Any] = {"name": name}
        if ids := list(user_ids):
            group["user_ids"] = ids
        reply = await self.request("POST", "/groups.json", json={"group": group})
        await self._expect(f"create group {name}", reply, 201)
        return dict(reply.body["group"])

    async def add_members(self, group_id: int, *user_ids: int) -> Reply:
        """``POST /groups/:id/users.json``: 204, or 422 "User is invalid" for a member."""
        return await self.request(
            "POST", f"/groups/{group_id}/users.json", json={"user_ids": list(user_ids)}
        )

    async def remove_member(self, group_id: int, user_id: int) -> Reply:
        """``DELETE /groups/:id/users/:uid.json``: 204 even for a non-member."""
        return await self.request("DELETE", f"/groups/{group_id}/users/{user_id}.json")

    async def delete_group(self, group_id: int) -> Reply:
        return await self.request("DELETE", f"/groups/{group_id}.json")


@dataclass(frozen=True)
class Redmine:
    """The running Redmine: ``base_url`` (``http://127.0.0.1:PORT``), the admin's
    ``api_key`` (send as ``X-Redmine-API-Key``), and ``client()`` for assertions.

    ``user_external_id_field`` and ``group_external_id_field`` are the ids of the custom
    fields "SCIM externalId" that up.sh creates; ``env`` is what mappings/redmine reads
    from the environment (rest.yaml's and the mapping's ``${env:...}``).
    """

    base_url: str
    api_key: str = field(repr=False)
    port: int
    pid: int
    scratch: Path  # database, logs (log/production.log, log/rackup.log), api_key
    user_external_id_field: int
    group_external_id_field: int
    timings: tuple[str, ...] = field(default=())

    def client(self, *, timeout: float = 30.0) -> RedmineClient:
        return RedmineClient(self.base_url, self.api_key, timeout=timeout)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Redmine-API-Key": self.api_key}

    @property
    def env(self) -> dict[str, str]:
        """The environment mappings/redmine (settings and mapping) needs for this Redmine."""
        return {
            "REDMINE_URL": self.base_url,
            "REDMINE_API_KEY": self.api_key,
            "REDMINE_USER_EXTERNAL_ID_FIELD": str(self.user_external_id_field),
            "REDMINE_GROUP_EXTERNAL_ID_FIELD": str(self.group_external_id_field),
        }

    @staticmethod
    def unique(prefix: str = "t") -> str:
        """A fresh name that is also a valid Redmine login (``[a-z0-9_-@.]``, <= 60)."""
        base = re.sub(r"[^a-z0-9_.-]", "-", prefix.lower())[:40]
        return f"{base}-{uuid.uuid4().hex[:12]}"


# ------------------------------------------------------------------- fixture
def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str) -> NoReturn:
    """Skip, or fail in CI: CI must really run the Redmine tests."""
    if _in_ci():
        pytest.fail(f"Redmine could not start (CI is set, so no skip): {reason}", pytrace=False)
    pytest.skip(f"Redmine unavailable: {reason}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_up(scratch: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDMINE_WATCH_PID": str(os.getpid())}
    proc = subprocess.Popen(
        ["bash", str(UP), str(scratch), str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # so a timeout can stop apt/rake/rackup as a group
    )
    try:
        out, err = proc.communicate(timeout=UP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\nup.sh: ERROR: up.sh did not finish within {UP_TIMEOUT:.0f}s"
        return subprocess.CompletedProcess(proc.args, -9, out, err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _reason(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "ERROR:" in line]
    last = errors[-1] if errors else (lines[-1] if lines else "no output")
    return f"deploy/redmine/up.sh exited {result.returncode}: {last.removeprefix('up.sh: ')}"


def _stop(scratch: Path) -> None:
    subprocess.run(
        ["bash", str(DOWN), str(scratch)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )


def start_redmine(scratch: Path) -> Redmine:
    """Run up.sh in ``scratch``; skip (or fail in CI) with its reason if it cannot."""
    if not sys.platform.startswith("linux"):
        _unavailable(f"needs Debian/Ubuntu with apt and dpkg, this is {sys.platform}")
    if shutil.which("bash") is None:
        _unavailable("bash not found")
    if shutil.which("dpkg-query") is None:
        _unavailable("dpkg-query not found: not a Debian-based system")
    started = time.monotonic()
    for _attempt in range(3):
        result = _run_up(scratch, _free_port())
        if result.returncode != PORT_IN_USE:
            break
    if result.returncode != 0:
        _stop(scratch)
        sys.stderr.write(result.stderr[-4000:])
        _unavailable(_reason(result))
    values = dict(
        line.split("=", 1) for line in result.stdout.splitlines() if re.match(r"^[A-Z_]+=", line)
    )
    timings = tuple(line for line in result.stderr.splitlines() if line.startswith("timing:"))
    redmine = Redmine(
        base_url=values["URL"],
        api_key=Path(values["KEY_FILE"]).read_text("utf-8").strip(),
        port=int(values["PORT"]),
        pid=int(values["PID"]),
        scratch=scratch,
        user_external_id_field=int(values["USER_EXTERNAL_ID_FIELD"]),
        group_external_id_field=int(values["GROUP_EXTERNAL_ID_FIELD"]),
        timings=(*timings, f"timing: fixture setup {time.monotonic() - started:.1f}s"),
    )
    print("\n[redmine] " + "; ".join(t.removeprefix("timing: ") for t in redmine.timings))
    return redmine


@contextlib.contextmanager
def running_redmine(scratch: Path) -> Iterator[Redmine]:
    """A Redmine of its own in ``scratch`` for the block (for tests that need few records)."""
    server = start_redmine(scratch)
    try:
        yield server
    finally:
        _stop(scratch)


@pytest.fixture(scope="session")
def redmine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redmine]:
    """One real Redmine for the whole session (see the module docstring)."""
    scratch = tmp_path_factory.mktemp("redmine")
    server = start_redmine(scratch)
    try:
        yield server
    finally:
        _stop(scratch)
