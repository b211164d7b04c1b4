"""The REST suite: the gateway on the REST adapter vs. a hand-written proxy, in front of Acme HR.

Run::

    .venv/bin/python -m bench rest                       # GET by id, filtered GET, POST
    .venv/bin/python -m bench rest --duration 5 --scenarios get,post

What happens (everything on 127.0.0.1, every child stopped at the end):

1. Acme HR (``python -m gateway.demo.legacy_app``, SQLite ``:memory:``, so a
   POST costs no disk flush) starts with a fresh API key and is seeded with
   ``--users`` accounts (1000) through its own API, most of them with every
   field set (phone, title, department, employee number, manager), some
   sparse, some suspended.
2. ``scim-gateway serve`` starts with one app on the ``rest`` adapter: the
   settings of ``mappings/acme-hr/rest.yaml`` as they are (``ACME_HR_URL``
   and ``ACME_HR_API_KEY`` given in its environment), the mapping
   ``mappings/acme-hr``, everything else at its defaults.
3. The baseline, :mod:`bench.proxy`, starts with the same environment: a bare
   aiohttp app doing the same translation in hand-written Python.
4. :func:`check_equal` sends the same requests to both and compares the
   answers (status, content type, body; the values of meta timestamps and the
   host in ``meta.location``/``Location`` aside, and for POSTs the new id) and the
   accounts each POST created in Acme HR. The result is printed; a
   difference makes the run fail (exit 1), as an unfair comparison.
5. Per scenario (GET by id, rotating over 100 accounts; GET with
   ``filter=userName eq "..."``; POST with unique userNames) each server gets
   a warm-up run and ABBA-alternated measured runs, as in the memory suite
   (:func:`bench.core._measure`). Besides req/s and latency, the CPU time
   each process used during each measured run is read from ``/proc``, which
   gives the CPU microseconds per request of the gateway, of the proxy and of
   Acme HR, whatever the placement.

CPU placement on 2 cores (``--legacy-on``): by default Acme HR shares the
servers' core (the last one) and the load generator keeps the other, so the
core under test runs server + legacy app, and the legacy app's cost is in
both paths: the throughput ratio is (proxy + Acme HR) / (gateway + Acme HR)
per request, a diluted but honest end-to-end figure. ``--legacy-on loader``
puts Acme HR beside wrk instead; the server then has its core alone, but
wrk and Acme HR compete for theirs, which can make that core the limit for
the faster proxy. The CPU-per-request columns do not depend on the choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import yaml

from bench.core import (
    BenchOptions,
    Log,
    Row,
    _measure,
    _stderr,
    choose_cpus,
    code_revision,
    make_loader,
)
from bench.load import Loader, PythonLoader, Target
from bench.scenarios import SCIM_JSON, USER_URN, Scenario, render, seed_user_name, user_body
from bench.servers import (
    APP,
    BASE_PATH,
    HOST,
    ROOT,
    Server,
    _start,
    auth_headers,
    gateway_command,
    make_token,
    seed_users,
    server_env,
    start_gateway,
)
from bench.stats import RunResult

MAPPING_DIR = ROOT / "mappings" / "acme-hr"
LEGACY_API = "/api/v1"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
REST_SCENARIO_KEYS = ("get", "filter", "post")
LEGACY_PLACEMENTS = ("servers", "loader")
#: How many seeded accounts the GET scenario rotates over (and the check reads).
GET_IDS = 100
#: Differences of the equality check printed (all are counted).
SHOWN_DIFFERENCES = 10


@dataclass(frozen=True)
class RestOptions(BenchOptions):
    scenarios: Sequence[str] = REST_SCENARIO_KEYS
    legacy_on: str = "servers"  #: the core(s) Acme HR runs on: "servers" or "loader"
    #: Legacy calls the proxy keeps in flight at once; 0: unbounded (the gateway's app
    #: setting max_concurrency is 8 by default: give 8 to take its limiter out of the ratio).
    proxy_limit: int = 0
    #: Also measure the gateway on the memory adapter (no legacy app) against the proxy.
    memory_row: bool = True


def build_rest_scenarios(filter_user_name: str) -> list[Scenario]:
    """GET by id (rotating over the seeded ids), a ``userName eq`` filter, POST; in this order."""
    filter_expr = f'userName eq "{filter_user_name}"'
    return [
        Scenario("get", "GET /Users/{id}", "GET", "/Users/{id}"),
        Scenario(
            "filter",
            "GET /Users?filter=userName eq",
            "GET",
            "/Users?filter=" + quote(filter_expr, safe=""),
        ),
        Scenario(
            "post",
            "POST /Users",
            "POST",
            "/Users",
            user_body("bench-{prefix}-{tid}-{n}"),
            status=201,
        ),
    ]


# -- the three servers -------------------------------------------------------------------


def legacy_env(legacy: Server | None, api_key: str) -> dict[str, str]:
    env = {**server_env(), "ACME_HR_API_KEY": api_key}
    if legacy is not None:
        env["ACME_HR_URL"] = legacy.origin + LEGACY_API
    return env


def start_legacy(workdir: Path, api_key: str, cpus: Collection[int] | None) -> Server:
    """Acme HR on an in-memory SQLite database; the key goes by environment, not argv."""

    def cmd(port: int) -> list[str]:
        module = [sys.executable, "-m", "gateway.demo.legacy_app"]
        return [*module, "--host", HOST, "--port", str(port), "--db", ":memory:"]

    return _start("legacy", cmd, "/healthz", workdir, cpus, env=legacy_env(None, api_key))


def write_rest_gateway_config(workdir: Path, digest: str, port: int) -> Path:
    """One app on the rest adapter: mappings/acme-hr/rest.yaml as its settings, unchanged."""
    settings = yaml.safe_load((MAPPING_DIR / "rest.yaml").read_text("utf-8"))
    config = {
        "server": {"host": HOST, "port": port},
        "log_level": "INFO",  # the shipped default: the access log on (audit on too)
        "apps": {
            APP: {
                "adapter": "rest",
                "mapping": str(MAPPING_DIR),
                "settings": settings,
                "auth": {"tokens": [{"name": "bench", "sha256": digest}]},
            }
        },
    }
    path = workdir / f"gateway-rest-{port}.yaml"
    path.write_text(json.dumps(config, indent=2), "utf-8")  # JSON is YAML
    return path


def start_rest_gateway(
    workdir: Path, digest: str, legacy: Server, api_key: str, cpus: Collection[int] | None
) -> Server:
    def cmd(port: int) -> list[str]:
        config = write_rest_gateway_config(workdir, digest, port)
        return [*gateway_command(), "serve", "--config", str(config)]

    return _start("gateway", cmd, "/readyz", workdir, cpus, env=legacy_env(legacy, api_key))


def start_proxy(
    workdir: Path,
    digest: str,
    legacy: Server,
    api_key: str,
    cpus: Collection[int] | None,
    max_concurrency: int = 0,
) -> Server:
    def cmd(port: int) -> list[str]:
        module = [sys.executable, "-m", "bench.proxy", "--host", HOST, "--port", str(port)]
        limit = ["--max-concurrency", str(max_concurrency)]
        return [*module, "--token-sha256", digest, "--base-path", BASE_PATH, *limit]

    return _start("proxy", cmd, "/healthz", workdir, cpus, env=legacy_env(legacy, api_key))


# -- seeding Acme HR ---------------------------------------------------------------------


def seed_account(index: int) -> dict[str, str | None]:
    """Account ``index``: most have every field, every 7th is sparse (a mail without kind or
    primary flag), every 50th suspended, and every 50th (another) without a status."""
    login = seed_user_name(index)
    account: dict[str, str | None] = {
        "login": login,
        "given": f"Seed{index}",
        "family": "User",
        "display": f"Seed{index} User",
        "mail": f"{login}@example.com",
    }
    if index % 7 != 3:
        account.update(
            mail_kind="work",
            mail_primary="y",
            phone=f"+1 555 {index:06d}",
            phone_kind="work",
            title="Engineer",
            dept=f"Dept {index % 12}",
            employee_no=f"E{index:06d}",
        )
    if index % 10:
        account["manager_id"] = f"acc_{index // 10 + 1:06d}"  # not checked by Acme HR
    if index % 50 == 49:
        account["status"] = "suspended"
    if index % 50 == 24:
        account["status"] = None  # not set: the user has no `active`
    return account


def _legacy_headers(api_key: str) -> dict[str, str]:
    return {"X-Api-Key": api_key, "Accept": "application/json"}


async def _seed(legacy: Server, api_key: str, count: int, concurrency: int = 8) -> list[str]:
    url = legacy.origin + LEGACY_API + "/accounts"
    ids: list[str | None] = [None] * count
    queue = iter(range(count))
    async with aiohttp.ClientSession(headers=_legacy_headers(api_key)) as session:

        async def worker() -> None:
            for i in queue:
                async with session.post(url, json={"account": seed_account(i)}) as resp:
                    data = await resp.json(content_type=None)
                    if resp.status != 201:
                        raise RuntimeError(f"seeding account {i}: HTTP {resp.status}: {data}")
                    ids[i] = data["account"]["account_id"]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [i for i in ids if i is not None]


def seed_accounts(legacy: Server, api_key: str, count: int) -> list[str]:
    """Create ``count`` accounts through Acme HR's API; their ids in index order."""
    return asyncio.run(_seed(legacy, api_key, count))


async def _count_accounts(legacy: Server, api_key: str) -> int:
    async with (
        aiohttp.ClientSession(headers=_legacy_headers(api_key)) as session,
        session.get(legacy.origin + LEGACY_API + "/accounts?limit=0") as resp,
    ):
        return int((await resp.json(content_type=None))["total"])


def count_accounts(legacy: Server, api_key: str) -> int:
    return asyncio.run(_count_accounts(legacy, api_key))


# -- the fairness check: both answer the same ----------------------------------------------


@dataclass
class EqualityCheck:
    """What :func:`check_equal` compared, and every difference it found."""

    counts: dict[str, int] = field(default_factory=dict)  #: kind of request -> answers compared
    differences: list[str] = field(default_factory=list)

    @property
    def compared(self) -> int:
        return sum(self.counts.values())

    @property
    def passed(self) -> bool:
        return self.compared > 0 and not self.differences

    def summary(self) -> str:
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.counts.items())
        verdict = "EQUAL" if self.passed else f"{len(self.differences)} DIFFERENCE(S)"
        return (
            f"{verdict}: proxy vs. gateway on {self.compared} request pairs ({kinds}); "
            "status, content type, body and Location compared, apart from the values of meta "
            "timestamps, the host in locations and a POST's new id"
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    content_type: str
    location: str | None
    body: Any


async def _ask(
    session: aiohttp.ClientSession, method: str, url: str, body: str | None = None
) -> _Answer:
    headers = {"Content-Type": SCIM_JSON} if body is not None else {}
    data = body.encode() if body is not None else None
    async with session.request(method, url, data=data, headers=headers) as resp:
        payload = await resp.json(content_type=None)
        return _Answer(resp.status, resp.content_type, resp.headers.get("Location"), payload)


def _path_of(url: str | None, new_id: str | None) -> str | None:
    if url is None:
        return None
    path = urlsplit(url).path
    return path.replace(new_id, "{id}") if new_id else path


def normalized(answer: _Answer, *, new_id: str | None = None) -> dict[str, Any]:
    """What must be equal: host, meta timestamp/version values and ``new_id`` taken out."""
    body = copy.deepcopy(answer.body)
    if isinstance(body, dict):
        listed = body.get("Resources")
        resources: list[Any] = listed if isinstance(listed, list) else [body]
        for resource in resources:
            if not isinstance(resource, dict):
                continue
            if new_id is not None and resource.get("id") == new_id:
                resource["id"] = "{id}"
            meta = resource.get("meta")
            if isinstance(meta, dict):
                for key in ("created", "lastModified", "version"):
                    if key in meta:  # both must have it; its value may differ (a POST's second)
                        meta[key] = "(present)"
                if "location" in meta:
                    meta["location"] = _path_of(meta["location"], new_id)
    return {
        "status": answer.status,
        "content_type": answer.content_type,
        "location": _path_of(answer.location, new_id),
        "body": body,
    }


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    """Where two JSON values first differ (a short description), or None."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                side = "gateway" if key in a else "proxy"
                return f"{where}.{key}: only the {side} has it"
            found = first_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items (gateway) vs. {len(b)} (proxy)"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    if a != b or type(a) is not type(b):
        return f"{where or '(whole)'}: gateway {a!r} vs. proxy {b!r}"
    return None


def rich_user_body(user_name: str) -> str:
    """A create body touching every mapped attribute, the enterprise extension included."""
    return json.dumps(
        {
            "schemas": [USER_URN, ENTERPRISE_URN],
            "userName": user_name,
            "active": False,
            "displayName": "Rich Check",
            "name": {"givenName": "Rich", "familyName": "Check"},
            "emails": [
                {"value": f"{user_name}-home@example.com", "type": "home"},
                {
                    "value": f"{user_name}@example.com",
                    "type": "work",
                    "display": "Office",
                    "primary": True,
                },
            ],
            "phoneNumbers": [
                {"value": "+1 555 0199", "type": "mobile"},
                {"value": "+1 555 0100", "type": "work", "display": "Desk", "primary": False},
            ],
            "title": "Auditor",
            ENTERPRISE_URN: {
                "department": "Finance",
                "employeeNumber": "E-CHECK",
                "manager": {"value": "acc_000001"},
            },
        },
        separators=(",", ":"),
    )


async def _check(
    gateway: Server,
    proxy: Server,
    legacy: Server,
    token: str,
    api_key: str,
    ids: Sequence[str],
    scenarios: Sequence[Scenario],
) -> EqualityCheck:
    check = EqualityCheck()
    legacy_accounts = legacy.origin + LEGACY_API + "/accounts/"

    def compare(kind: str, what: str, gw: dict[str, Any], px: dict[str, Any]) -> None:
        check.counts[kind] = check.counts.get(kind, 0) + 1
        found = first_difference(gw, px)
        if found:
            check.differences.append(f"{what}: {found}")

    async with (
        aiohttp.ClientSession(headers=auth_headers(token)) as scim,
        aiohttp.ClientSession(headers=_legacy_headers(api_key)) as acme,
    ):

        async def legacy_record(account_id: str) -> dict[str, Any]:
            async with acme.get(legacy_accounts + quote(account_id, safe="")) as resp:
                record: dict[str, Any] = (await resp.json(content_type=None))["account"]
            for key in ("account_id", "created_at", "updated_at"):
                record.pop(key, None)
            return record

        async def forget(answer: _Answer) -> str | None:
            """Delete the account a POST created (so the next POST may reuse its values)."""
            new_id = answer.body.get("id") if isinstance(answer.body, dict) else None
            if answer.status == 201 and isinstance(new_id, str):
                async with acme.delete(legacy_accounts + quote(new_id, safe="")) as resp:
                    await resp.read()
                return new_id
            return None

        for id_ in ids[:GET_IDS]:
            path = f"/Users/{id_}"
            gw, px = (
                await _ask(scim, "GET", gateway.base_url + path),
                await _ask(scim, "GET", proxy.base_url + path),
            )
            compare("GET /Users/{id}", f"GET {path}", normalized(gw), normalized(px))

        by_key = {s.key: s for s in scenarios}
        filter_paths = [by_key["filter"].path] if "filter" in by_key else []
        for user_name in (seed_user_name(len(ids) // 2), seed_user_name(49), "no-such-user"):
            filter_paths.append("/Users?filter=" + quote(f'userName eq "{user_name}"', safe=""))
        for path in dict.fromkeys(filter_paths):
            gw, px = (
                await _ask(scim, "GET", gateway.base_url + path),
                await _ask(scim, "GET", proxy.base_url + path),
            )
            compare("filtered GET", f"GET {path}", normalized(gw), normalized(px))

        tag = secrets.token_hex(3)
        post = by_key.get("post") or build_rest_scenarios("x")[2]
        values: dict[str, str | int] = {"prefix": f"check{tag}", "tid": 0, "n": 0, "id": ids[0]}
        bodies = [render(post.body or "", values), rich_user_body(f"check-rich-{tag}")]
        for body in bodies:
            # The same body to each in turn, deleting the first account before the second POST.
            gw = await _ask(scim, "POST", gateway.base_url + "/Users", body)
            gw_record = await legacy_record(gw.body.get("id", "")) if gw.status == 201 else {}
            gw_id = await forget(gw)
            px = await _ask(scim, "POST", proxy.base_url + "/Users", body)
            px_record = await legacy_record(px.body.get("id", "")) if px.status == 201 else {}
            px_id = await forget(px)
            what = "POST /Users " + json.loads(body)["userName"]
            compare("POST /Users", what, normalized(gw, new_id=gw_id), normalized(px, new_id=px_id))
            compare("Acme HR account created", f"{what} (Acme HR record)", gw_record, px_record)
    return check


def check_equal(
    gateway: Server,
    proxy: Server,
    legacy: Server,
    token: str,
    api_key: str,
    ids: Sequence[str],
    scenarios: Sequence[Scenario],
) -> EqualityCheck:
    """Send the same requests to the gateway and the proxy; list every difference."""
    return asyncio.run(_check(gateway, proxy, legacy, token, api_key, ids, scenarios))


# -- CPU time per process ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by process ``pid``, all threads; None where /proc cannot tell."""
    total_ns, found = 0, False
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with (
                contextlib.suppress(OSError, ValueError, IndexError),
                open(f"/proc/{pid}/task/{task}/schedstat", encoding="ascii") as f,
            ):
                total_ns += int(f.read().split()[0])
                found = True
    if found:
        return total_ns / 1e9
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


@dataclass
class CpuUse:
    """CPU seconds of the server under load and of Acme HR, over the measured runs."""

    server_s: float = 0.0
    legacy_s: float = 0.0
    requests: int = 0
    known: bool = True

    def per_request_us(self, which: str) -> float | None:
        if not self.known or not self.requests:
            return None
        seconds = self.server_s if which == "server" else self.legacy_s
        return seconds / self.requests * 1e6


@dataclass
class CpuProbe:
    """A loader that also reads the CPU time the server and Acme HR spent during each run."""

    inner: Loader
    pids: Mapping[str, int]  #: target name ("gateway", "baseline") and "legacy" -> process id
    use: dict[tuple[str, str], CpuUse] = field(default_factory=dict)
    name: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        self.name, self.description = self.inner.name, self.inner.description

    def run(self, scenario: Scenario, target: Target, seconds: int, tag: str) -> RunResult:
        server, legacy = self.pids[target.name], self.pids["legacy"]
        before = cpu_seconds(server), cpu_seconds(legacy)
        result = self.inner.run(scenario, target, seconds, tag)
        after = cpu_seconds(server), cpu_seconds(legacy)
        if tag.startswith("r"):  # measured runs only, not the warm-up
            use = self.use.setdefault((scenario.key, target.name), CpuUse())
            if None in before or None in after:
                use.known = False
            else:
                use.server_s += after[0] - before[0]  # type: ignore[operator]
                use.legacy_s += after[1] - before[1]  # type: ignore[operator]
            use.requests += result.requests
        return result


# -- the run ---------------------------------------------------------------------------------


@dataclass
class RestReport:
    options: RestOptions
    loader: str
    fallback: bool
    pinning: str
    rows: list[Row]
    cpu: dict[tuple[str, str], CpuUse]
    check: EqualityCheck
    accounts_seeded: int
    accounts_after: int
    revision: str = ""
    notes: list[str] = field(default_factory=list)
    #: The gateway on the memory adapter (its "gateway" side) next to the same proxy.
    memory_rows: list[Row] = field(default_factory=list)
    memory_cpu: dict[tuple[str, str], CpuUse] = field(default_factory=dict)

    def cpu_of(self, row: Row, target: str) -> CpuUse:
        table = self.memory_cpu if row in self.memory_rows else self.cpu
        return table.get((row.scenario.key, target), CpuUse(known=False))

    def problems(self) -> list[str]:
        shown = self.check.differences[:SHOWN_DIFFERENCES]
        out = [f"equality check: {d}" for d in shown]
        if len(self.check.differences) > len(shown):
            out.append(f"equality check: ... and {len(self.check.differences) - len(shown)} more")
        if not self.check.compared:
            out.append("equality check: nothing was compared")
        rows = [*self.rows, *self.memory_rows]
        return out + [p for row in rows for p in row.problems()]


def _memory_rows(
    options: RestOptions,
    workdir: Path,
    credentials: tuple[str, str],
    proxy_and_ids: tuple[Server, list[str]],
    legacy: Server,
    server_cpus: Collection[int] | None,
    loader: Loader,
    log: Log,
) -> tuple[list[Row], dict[tuple[str, str], CpuUse]]:
    """The gateway on the memory adapter (no legacy hop) next to the same proxy, same
    scenarios; it does the gateway's own work alone, so it should be at least as fast."""
    if not options.memory_row:
        return [], {}
    (token, digest), (proxy, proxy_ids) = credentials, proxy_and_ids
    log("starting the gateway on the memory adapter (shipped defaults, no legacy app)...")
    memory = start_gateway(workdir, digest, server_cpus, name="gateway-memory")
    try:
        ids = seed_users(memory.base_url, token, max(1, options.users))
        headers = auth_headers(token)
        targets = {
            "gateway": Target("gateway", memory.origin, headers, ids[:GET_IDS]),
            "baseline": Target("baseline", proxy.origin, headers, proxy_ids[:GET_IDS]),
        }
        probe = CpuProbe(
            loader,
            {"gateway": memory.proc.pid, "baseline": proxy.proc.pid, "legacy": legacy.proc.pid},
        )
        scenarios = build_rest_scenarios(seed_user_name(len(ids) // 2))
        rows = [
            _measure(scenario, targets, probe, options.warmup, options.slices(), log)
            for scenario in scenarios
            if scenario.key in options.scenarios
        ]
    finally:
        memory.stop()
    return rows, probe.use


def rest_cpus(
    pin: bool, legacy_on: str
) -> tuple[set[int] | None, set[int] | None, set[int] | None, str]:
    """(server cores, Acme HR's cores, load-generator cores, description)."""
    server, load, description = choose_cpus(pin)
    if server is None or load is None:
        return None, None, None, description
    legacy = server if legacy_on == "servers" else load
    cores = ",".join(map(str, sorted(legacy)))
    placement = f"Acme HR on core {cores} (with the {legacy_on})"
    return server, legacy, load, f"{description}; {placement}"


def run_rest_bench(options: RestOptions, log: Log = _stderr) -> RestReport:
    """Run the REST suite and return its rows; every subprocess is stopped on return."""
    unknown = set(options.scenarios) - set(REST_SCENARIO_KEYS)
    if unknown:
        raise ValueError(f"unknown REST scenario(s): {', '.join(sorted(unknown))}")
    if options.legacy_on not in LEGACY_PLACEMENTS:
        raise ValueError(f"legacy_on is one of {', '.join(LEGACY_PLACEMENTS)}")
    server_cpus, legacy_cpus, load_cpus, pinning = rest_cpus(options.pin, options.legacy_on)
    revision = code_revision()
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scim-bench-rest-")))
        loader, notes = make_loader(options, load_cpus, workdir)
        token, digest = make_token()
        api_key = secrets.token_urlsafe(24)

        log("starting Acme HR (gateway.demo.legacy_app, SQLite :memory:)...")
        legacy = start_legacy(workdir, api_key, legacy_cpus)
        stack.callback(legacy.stop)
        log(f"seeding {options.users} accounts through Acme HR's API...")
        ids = seed_accounts(legacy, api_key, max(1, options.users))

        log("starting the gateway (scim-gateway serve, rest adapter, mappings/acme-hr)...")
        gateway = start_rest_gateway(workdir, digest, legacy, api_key, server_cpus)
        stack.callback(gateway.stop)
        log("starting the proxy (bench.proxy: bare aiohttp, hand-written translation)...")
        proxy = start_proxy(workdir, digest, legacy, api_key, server_cpus, options.proxy_limit)
        stack.callback(proxy.stop)

        scenarios = build_rest_scenarios(seed_user_name(len(ids) // 2))
        check = check_equal(gateway, proxy, legacy, token, api_key, ids, scenarios)
        log(f"equality check: {check.summary()}")
        for difference in check.differences[:SHOWN_DIFFERENCES]:
            log(f"  difference: {difference}")

        headers = auth_headers(token)
        targets = {
            "gateway": Target("gateway", gateway.origin, headers, ids[:GET_IDS]),
            "baseline": Target("baseline", proxy.origin, headers, ids[:GET_IDS]),
        }
        pids = {"gateway": gateway.proc.pid, "baseline": proxy.proc.pid}
        probe = CpuProbe(loader, {**pids, "legacy": legacy.proc.pid})
        slices = options.slices()
        rows = [
            _measure(scenario, targets, probe, options.warmup, slices, log)
            for scenario in scenarios
            if scenario.key in options.scenarios
        ]
        accounts_after = count_accounts(legacy, api_key)
        memory_rows, memory_cpu = _memory_rows(
            options, workdir, (token, digest), (proxy, ids), legacy, server_cpus, loader, log
        )

    if options.proxy_limit:
        notes.append(f"the proxy keeps at most {options.proxy_limit} Acme HR calls in flight")
    if "post" in options.scenarios:
        notes.append(
            f"POST grew Acme HR from {len(ids)} to {accounts_after} accounts "
            "(the GETs ran before, on the seeded accounts)"
        )
    return RestReport(
        options=options,
        loader=loader.description,
        fallback=isinstance(loader, PythonLoader),
        pinning=pinning,
        rows=rows,
        memory_rows=memory_rows,
        memory_cpu=memory_cpu,
        cpu=probe.use,
        check=check,
        accounts_seeded=len(ids),
        accounts_after=accounts_after,
        revision=revision,
        notes=notes,
    )


__all__ = [
    "REST_SCENARIO_KEYS",
    "EqualityCheck",
    "RestOptions",
    "RestReport",
    "build_rest_scenarios",
    "check_equal",
    "run_rest_bench",
]
