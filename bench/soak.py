"""``python -m bench.soak``: minutes of mixed SCIM load into a legacy app that fails 10 % of calls.

The gateway (REST adapter, the shipped Acme HR mapping) and Acme HR run on
loopback in this process; :class:`gateway.demo.faults.Faults` makes a share
of Acme HR's calls fail at random: 500, 503, 429 with ``Retry-After``, late
answers past the timeout, dropped connections and cut-off bodies, before or
after the app did the work. Workers create, patch, read, filter, deactivate
and delete users, each worker owning its own users so their requests are
sequential and their expected state is known.

The model of each user holds the set of states it may be in: a 2xx answer
fixes it, a reported failure leaves it, an ``unknown`` outcome (read from the
recorded operation) widens it. Every read checks the app's answer against
that set while the load runs, and at the end Acme HR's own store is checked:

* no duplicate accounts: each login at most once;
* no lost changes: every account in a state its model allows;
* stable memory: resident set size sampled over the run, its slope reported;
* no leaked tasks: the tasks besides open server connections, back to the
  count before the load, and none at all left after shutdown.

Times and rates are not asserted anywhere: the figures are for the report.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from gateway.app import BREAKERS, create_app
from gateway.demo.faults import Fault, Faults, acme_settings
from gateway.demo.legacy_app import STORE, Store, create_legacy_app
from gateway.http.views import RECORDER
from gateway.operation import Operation

HOST = "127.0.0.1"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
API_KEY = "soak-legacy-key-0001"
TOKEN = "soak-idp-token-0001"

#: What a failing legacy call gets; "after" faults hit once the app has done the work.
FAULT_MIX = (
    Fault("status", status=500),
    Fault("status", status=503),
    Fault("status", status=429, retry_after="1"),
    Fault("slow", phase="after", delay=1.5),  # past the 1 s timeout below
    Fault("drop"),
    Fault("drop", phase="after"),
    Fault("truncate", phase="after"),
)
REST = {
    "timeout": {"connect": 1, "total": 1.0},
    "retry": {"attempts": 3, "base": 0.05, "cap": 0.5, "budget": 5, "idempotent_patch": True},
}


@dataclass(frozen=True)
class SoakOptions:
    duration: float = 180.0
    users: int = 60
    workers: int = 12
    fault_rate: float = 0.10
    seed: int = 1
    #: Seconds between two memory samples.
    sample_every: float = 5.0


@dataclass
class Model:
    """What one user may be in Acme HR: each field is the set of values still possible."""

    login: str
    id: str | None = None
    exists: set[bool] = field(default_factory=lambda: {False})
    title: set[str | None] = field(default_factory=lambda: {None})
    active: set[bool] = field(default_factory=lambda: {True})

    def fix(self, account: dict[str, Any] | None) -> list[str]:
        """Take what the app holds now; say what the model did not allow (a lost change)."""
        problems = []
        exists = account is not None
        if exists not in self.exists:
            problems.append(f"{self.login}: exists={exists}, expected one of {self.exists}")
        self.exists = {exists}
        if account is None:
            self.id, self.title, self.active = None, {None}, {True}
            return problems
        title, active = account.get("title"), account.get("active", True)
        if title not in self.title:
            problems.append(f"{self.login}: title={title!r}, expected one of {self.title}")
        if active not in self.active:
            problems.append(f"{self.login}: active={active}, expected one of {self.active}")
        self.id, self.title, self.active = account["id"], {title}, {active}
        return problems


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    unknown: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class SoakReport:
    options: SoakOptions
    seconds: float
    tally: Tally
    legacy_calls: int
    injected: Counter[str]
    breaker_opened: int
    duplicates: list[str]
    rss_kib: list[tuple[float, int]]
    tasks_before: int
    tasks_after: int
    tasks_left: list[str]

    @property
    def rss_slope(self) -> float:
        """KiB per minute over the second half of the run (after warm-up)."""
        half = self.rss_kib[len(self.rss_kib) // 2 :]
        return slope(half) * 60 if len(half) >= 2 else 0.0

    @property
    def ok(self) -> bool:
        return not (
            self.duplicates
            or self.tally.problems
            or self.tasks_after != self.tasks_before
            or self.tasks_left
        )


def slope(points: Iterable[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    pts = list(points)
    mean_x = sum(x for x, _ in pts) / len(pts)
    mean_y = sum(y for _, y in pts) / len(pts)
    var = sum((x - mean_x) ** 2 for x, _ in pts)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in pts) / var


def rss_kib() -> int:
    """Resident set size of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
    except OSError:
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


class Outcomes:
    """A recorder that keeps only the outcome of each tagged request until the worker takes it."""

    def __init__(self) -> None:
        self._by_tag: dict[str, str] = {}

    async def opened(self, op: Operation) -> None:
        return None

    async def closed(self, op: Operation) -> None:
        if op.user_agent:
            self._by_tag[op.user_agent] = op.outcome

    def take(self, tag: str) -> str | None:
        return self._by_tag.pop(tag, None)


class Worker:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base: str,
        outcomes: Outcomes,
        users: list[Model],
        rng: random.Random,
        tally: Tally,
    ) -> None:
        self.session, self.base, self.outcomes = session, base, outcomes
        self.users, self.rng, self.tally = users, rng, tally
        self._n = 0

    async def call(
        self, what: str, method: str, path: str, body: Any = None, params: Any = None
    ) -> tuple[int, Any, bool]:
        """One SCIM request: (status, JSON body, whether the outcome is unknown)."""
        self._n += 1
        tag = f"soak/{id(self)}/{self._n}"
        async with self.session.request(
            method, self.base + path, json=body, params=params, headers={"User-Agent": tag}
        ) as resp:
            data = await resp.json(content_type=None) if resp.status != 204 else None
        unknown = self.outcomes.take(tag) == "unknown"
        self.tally.requests[f"{what} {resp.status}"] += 1
        self.tally.unknown += unknown
        return resp.status, data, unknown

    async def run(self, until: float) -> None:
        while time.monotonic() < until:
            user = self.rng.choice(self.users)
            try:
                await self.step(user)
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.tally.problems.append(f"{user.login}: the gateway failed: {exc!r}")

    async def step(self, user: Model) -> None:
        if user.id is None and user.exists == {False}:
            return await self.create(user)
        if user.id is None:
            return await self.find(user)
        action = self.rng.choices(
            [self.patch_title, self.deactivate, self.read, self.find, self.delete],
            weights=[4, 2, 4, 2, 1],
        )[0]
        return await action(user)

    async def create(self, user: Model) -> None:
        body = {"schemas": [USER_URN], "userName": user.login, "name": {"givenName": "Soak"}}
        status, data, unknown = await self.call("create", "POST", "/Users", body)
        if status == 201:
            user.exists, user.title, user.active = {True}, {None}, {True}
            self.tally.problems += user.fix(_scim_state(data))
        elif status == 409:  # an earlier create, reported unknown, did happen
            await self.find(user)
        elif unknown:
            user.exists.add(True)

    async def find(self, user: Model) -> None:
        params = {"filter": f'userName eq "{user.login}"'}
        status, data, _ = await self.call("filter", "GET", "/Users", params=params)
        if status != 200:
            return
        found = data["Resources"]
        if len(found) > 1:
            self.tally.problems.append(f"{user.login}: {len(found)} accounts")
        self.tally.problems += user.fix(_scim_state(found[0]) if found else None)

    async def read(self, user: Model) -> None:
        status, data, _ = await self.call("get", "GET", f"/Users/{user.id}")
        if status in (200, 404):
            self.tally.problems += user.fix(_scim_state(data) if status == 200 else None)

    async def _patch(
        self, user: Model, what: str, path: str, value: Any, allowed: set[Any]
    ) -> None:
        """A 200 or 404 answer is checked against the model and taken; unknown widens it."""
        op = {"op": "replace", "path": path, "value": value}
        body = {"schemas": [PATCH_URN], "Operations": [op]}
        status, data, unknown = await self.call(what, "PATCH", f"/Users/{user.id}", body)
        if status == 200:
            allowed.add(value)  # fix() narrows it to what the app holds
            self.tally.problems += user.fix(_scim_state(data))
        elif status == 404:
            self.tally.problems += user.fix(None)
        elif unknown:
            allowed.add(value)

    async def patch_title(self, user: Model) -> None:
        title = f"t{self.rng.randrange(10**6)}"
        await self._patch(user, "patch", "title", title, user.title)

    async def deactivate(self, user: Model) -> None:
        active = not next(iter(user.active)) if len(user.active) == 1 else True
        await self._patch(user, "deactivate", "active", active, user.active)

    async def delete(self, user: Model) -> None:
        status, _, unknown = await self.call("delete", "DELETE", f"/Users/{user.id}")
        if status in (204, 404):  # 404: an earlier attempt whose answer was lost did it
            user.exists, user.id, user.title, user.active = {False}, None, {None}, {True}
        elif unknown:
            user.exists.add(False)


def _scim_state(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": resource["id"],
        "title": resource.get("title"),
        "active": resource.get("active", True),
    }


def _final_check(store: Store, users: list[Model]) -> tuple[list[str], list[str]]:
    """(duplicates, lost changes) in Acme HR's own store."""
    items, total = store.list_accounts(0, 10_000, {})
    assert total <= 10_000
    logins = Counter(a["login"] for a in items)
    duplicates = [f"{login} x{n}" for login, n in logins.items() if n > 1]
    by_login = {a["login"]: a for a in items}
    problems = []
    for user in users:
        account = by_login.get(user.login)
        state = None
        if account is not None:
            state = {
                "id": account["account_id"],
                "title": account["title"],
                "active": account["status"] != "suspended",
            }
        problems += user.fix(state)
    return duplicates, problems


def _loose_tasks() -> list[asyncio.Task[Any]]:
    """Tasks besides this one and the servers' open keep-alive connections."""
    me = asyncio.current_task()
    return [
        t
        for t in asyncio.all_tasks()
        if t is not me and "RequestHandler.start" not in repr(t.get_coro())
    ]


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://{HOST}:{port}"


async def run_soak(options: SoakOptions, progress: Any = None) -> SoakReport:
    rng = random.Random(options.seed)
    faults = Faults(history=100)
    legacy_runner, legacy_url = await _serve(create_legacy_app(":memory:", API_KEY, faults=faults))
    store = legacy_runner.app[STORE]
    app = create_app(acme_settings(f"{legacy_url}/api/v1", API_KEY, TOKEN, rest=REST))
    outcomes = Outcomes()
    app[RECORDER] = outcomes
    gateway_runner, gateway_url = await _serve(app)
    breaker = app[BREAKERS]["acme"]
    opened = 0
    users = [Model(f"soak.user{i:04d}") for i in range(options.users)]
    tally = Tally()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    try:
        async with aiohttp.ClientSession(headers=headers) as session:
            tasks_before = len(_loose_tasks())
            faults.randomly(options.fault_rate, FAULT_MIX, random.Random(options.seed + 1))
            until = t0 + options.duration
            workers = [
                Worker(
                    session,
                    f"{gateway_url}/apps/acme/scim/v2",
                    outcomes,
                    users[i :: options.workers],
                    random.Random(rng.random()),
                    tally,
                )
                for i in range(options.workers)
            ]
            load = asyncio.gather(*(w.run(until) for w in workers))
            while not load.done():
                gc.collect()
                samples.append((time.monotonic() - t0, rss_kib()))
                opened += breaker.state != "closed"
                if progress is not None:
                    progress(samples[-1], sum(tally.requests.values()))
                await asyncio.wait([load], timeout=options.sample_every)
            await load
            faults.clear()
            await faults.settled()
            await asyncio.sleep(0.2)  # let the last answers and connection closes run
            tasks_after = len(_loose_tasks())
        seconds = time.monotonic() - t0
        duplicates, problems = _final_check(store, users)
        tally.problems += problems
        legacy_calls, injected = faults.seen, faults.injected
    finally:
        await gateway_runner.cleanup()
        await legacy_runner.cleanup()
    left = [repr(t.get_coro()) for t in _loose_tasks()]
    return SoakReport(
        options,
        seconds,
        tally,
        legacy_calls,
        injected,
        opened,
        duplicates,
        samples,
        tasks_before,
        tasks_after,
        left,
    )


def format_soak(report: SoakReport) -> str:
    t = report.tally
    total = sum(t.requests.values())
    injected = sum(report.injected.values())
    rss = [k for _, k in report.rss_kib]
    lines = [
        f"soak: {report.seconds:.0f} s, {report.options.workers} workers, "
        f"{report.options.users} users, fault rate {report.options.fault_rate:.0%}",
        f"SCIM requests: {total} ({total / max(report.seconds, 1e-9):.0f}/s); "
        f"outcome unknown: {t.unknown}",
        f"legacy calls: {report.legacy_calls}; faults injected: {injected} "
        f"({injected / max(report.legacy_calls, 1):.1%})",
        "  " + ", ".join(f"{k}: {v}" for k, v in sorted(report.injected.items())),
        "answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(t.requests.items())),
        f"breaker seen not closed in {report.breaker_opened} of {len(rss)} samples",
        f"duplicate accounts: {len(report.duplicates)} {report.duplicates[:5]}",
        f"lost changes: {len(t.problems)} {t.problems[:5]}",
        f"RSS: {rss[0] if rss else 0} -> {rss[-1] if rss else 0} KiB "
        f"(max {max(rss, default=0)}); slope over the second half "
        f"{report.rss_slope:+.1f} KiB/min",
        f"tasks (besides server connections): {report.tasks_before} before the load, "
        f"{report.tasks_after} after; left after shutdown: {len(report.tasks_left)}",
        "OK" if report.ok else "FAILED",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=180.0, help="seconds of load (180)")
    p.add_argument("--users", type=int, default=60)
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--fault-rate", type=float, default=0.10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sample-every", type=float, default=5.0)
    args = p.parse_args(argv)
    options = SoakOptions(
        args.duration, args.users, args.workers, args.fault_rate, args.seed, args.sample_every
    )

    def progress(sample: tuple[float, int], requests: int) -> None:
        print(f"  {sample[0]:6.0f} s  RSS {sample[1]} KiB  {requests} requests", file=sys.stderr)

    report = asyncio.run(run_soak(options, progress))
    print(format_soak(report))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
