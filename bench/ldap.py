"""The LDAP suite: 10,000 users provisioned and listed with paging, through the gateway into slapd.

Run::

    .venv/bin/python -m bench ldap                      # 10,000 users, 8 workers
    .venv/bin/python -m bench ldap --users 2000 --connections 4

What happens (everything on this machine, removed or stopped at the end):

1. A throwaway slapd (:mod:`adapters.ldap.slapd`, Debian's package, installed when
   missing) on a loopback port; two subtrees, one per target.
2. ``scim-gateway serve`` with one app on the ``ldap`` adapter: the shipped
   ``mappings/ldap-inetorgperson`` settings and mapping, pointed at the gateway's
   subtree, ``pool_size`` and ``max_concurrency`` of ``--connections``.
3. Provision: ``--users`` POST /Users from ``--connections`` closed-loop workers;
   the baseline adds the same entries (the attributes the mapping writes) straight
   to slapd with ldap3, from as many threads, each with its own bound connection.
4. List: an IdP import, GET /Users?startIndex=1&count=100, then 101, ... until
   every user was seen once; the baseline reads the same entries in RFC 2696 pages
   of 100 with ldap3. Every answer is checked (each user seen exactly once).

Each side's wall time, its rate and the gateway/direct ratio are printed. The
directory's work is in both columns; the difference is the gateway's (HTTP, SCIM,
mapping, the adapter's worker threads) and, for listing, the adapter's way of
paging SCIM's startIndex over LDAP, which has no offsets: every page reads the ids
of all matches in pages, then the page's entries.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import ldap3
import yaml

from adapters.ldap.slapd import (
    BIND_DN,
    BIND_PASSWORD,
    ROOT_DN,
    ROOT_PASSWORD,
    SUFFIX,
    Slapd,
    running_slapd,
)
from bench.core import code_revision
from bench.servers import (
    HOST,
    Server,
    _start,
    auth_headers,
    gateway_command,
    make_token,
    server_env,
)
from gateway.mapping.engine import MAPPINGS_DIR

__all__ = ["LdapOptions", "LdapReport", "format_ldap_report", "run_ldap_bench"]

PACK = MAPPINGS_DIR / "ldap-inetorgperson"
APP = "bench"  # bench.servers serves its base_url under this app
PAGE = 100


@dataclass(frozen=True)
class LdapOptions:
    users: int = 10_000
    connections: int = 8


@dataclass
class Side:
    seconds: float = 0.0
    count: int = 0

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


@dataclass
class LdapReport:
    options: LdapOptions
    revision: str
    provision: dict[str, Side] = field(default_factory=dict)
    listing: dict[str, Side] = field(default_factory=dict)
    pages: int = 0
    errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        found = list(self.errors)
        for part in (self.provision, self.listing):
            for name, side in part.items():
                if side.count != self.options.users:
                    found.append(f"{name}: {side.count} of {self.options.users} users")
        return found


def _root(server: Slapd) -> ldap3.Connection:
    conn = ldap3.Connection(
        ldap3.Server(server.url, get_info=ldap3.NONE), ROOT_DN, ROOT_PASSWORD, raise_exceptions=True
    )
    conn.open()
    conn.bind()
    return conn


def _subtree(server: Slapd, name: str) -> str:
    base = f"ou={name},{SUFFIX}"
    conn = _root(server)
    try:
        conn.add(base, "organizationalUnit")  # type: ignore[no-untyped-call]
        for ou in ("people", "groups"):
            conn.add(f"ou={ou},{base}", "organizationalUnit")  # type: ignore[no-untyped-call]
    finally:
        conn.unbind()
    return base


def _settings(server: Slapd, base: str, connections: int) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((PACK / "ldap.yaml").read_text("utf-8"))
    text = json.dumps(raw).replace(SUFFIX, base)
    settings: dict[str, Any] = json.loads(text)
    settings.pop("tls", None)
    settings.update(
        url=server.url,
        start_tls=False,
        bind_dn="${env:BENCH_LDAP_BIND_DN}",
        password="${env:BENCH_LDAP_PASSWORD}",
        pool_size=connections,
    )
    return settings


def _user(n: int) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"bench.user{n:06d}",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
        "emails": [{"value": f"bench.user{n:06d}@example.com", "type": "work"}],
        "active": True,
    }


def _entry(n: int) -> dict[str, Any]:
    """The entry the mapping makes of :func:`_user` (what the baseline adds)."""
    uid = f"bench.user{n:06d}"
    return {
        "objectClass": ["inetOrgPerson"],
        "uid": uid,
        "cn": uid,
        "sn": f"Family{n}",
        "givenName": f"Given{n}",
        "mail": f"{uid}@example.com",
        "employeeType": "active",
    }


def start_ldap_gateway(
    workdir: Path, digest: str, settings: dict[str, Any], connections: int
) -> Server:
    def cmd(port: int) -> list[str]:
        config = {
            "server": {"host": HOST, "port": port},
            "log_level": "WARNING",
            "apps": {
                APP: {
                    "adapter": "ldap",
                    "mapping": str(PACK),
                    "settings": settings,
                    "max_concurrency": connections,
                    "auth": {"tokens": [{"name": "bench", "sha256": digest}]},
                }
            },
        }
        path = workdir / f"gateway-{port}.yaml"
        path.write_text(json.dumps(config, indent=2), "utf-8")
        return [*gateway_command(), "serve", "--config", str(path)]

    env = {**server_env(), "BENCH_LDAP_BIND_DN": BIND_DN, "BENCH_LDAP_PASSWORD": BIND_PASSWORD}
    return _start("gateway", cmd, "/readyz", workdir, None, env=env)


# -- through the gateway -------------------------------------------------------------------


async def _provision(base_url: str, token: str, users: int, workers: int) -> Side:
    numbers = iter(range(users))
    done = 0
    errors: list[str] = []
    headers = {**auth_headers(token), "Content-Type": "application/scim+json"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal done
        for n in numbers:
            async with session.post(f"{base_url}/Users", json=_user(n), headers=headers) as r:
                if r.status != 201:
                    errors.append(f"POST /Users: {r.status} {(await r.text())[:200]}")
                    return
                done += 1

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(workers)))
    if errors:
        raise RuntimeError(errors[0])
    return Side(time.perf_counter() - started, done)


async def _list(base_url: str, token: str) -> tuple[Side, int]:
    seen: set[str] = set()
    pages = 0
    start = 1
    started = time.perf_counter()
    async with aiohttp.ClientSession(headers=auth_headers(token)) as session:
        while True:
            url = f"{base_url}/Users?startIndex={start}&count={PAGE}"
            async with session.get(url) as r:
                if r.status != 200:
                    raise RuntimeError(f"GET /Users: {r.status} {(await r.text())[:200]}")
                body = await r.json(content_type=None)
            pages += 1
            ids = [u["id"] for u in body["Resources"]]
            if seen & set(ids):
                raise RuntimeError(f"page at {start} repeats users of earlier pages")
            seen.update(ids)
            start += len(ids)
            if not ids or start > body["totalResults"]:
                break
    return Side(time.perf_counter() - started, len(seen)), pages


# -- straight to slapd (ldap3) -------------------------------------------------------------


def _direct_provision(server: Slapd, base: str, users: int, workers: int) -> Side:
    parent = f"ou=people,{base}"

    def add(numbers: range) -> int:
        conn = ldap3.Connection(
            ldap3.Server(server.url, get_info=ldap3.NONE),
            BIND_DN,
            BIND_PASSWORD,
            raise_exceptions=True,
        )
        conn.open()
        conn.bind()
        try:
            for n in numbers:
                entry = _entry(n)
                conn.add(f"uid={entry['uid']},{parent}", attributes=entry)  # type: ignore[no-untyped-call]
        finally:
            conn.unbind()
        return len(numbers)

    chunks = [range(i, users, workers) for i in range(workers)]
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        done = sum(pool.map(add, chunks))
    return Side(time.perf_counter() - started, done)


def _direct_list(server: Slapd, base: str) -> Side:
    conn = ldap3.Connection(
        ldap3.Server(server.url, get_info=ldap3.NONE), BIND_DN, BIND_PASSWORD, raise_exceptions=True
    )
    started = time.perf_counter()
    conn.open()
    conn.bind()
    seen: set[str] = set()
    try:
        entries = conn.extend.standard.paged_search(
            f"ou=people,{base}",
            "(objectClass=inetOrgPerson)",
            attributes=["entryUUID", "uid", "cn", "sn", "givenName", "mail", "employeeType"],
            paged_size=PAGE,
            generator=True,
        )
        for item in entries:
            if item.get("type") == "searchResEntry":
                seen.add(item["dn"])
    finally:
        conn.unbind()
    return Side(time.perf_counter() - started, len(seen))


def run_ldap_bench(options: LdapOptions, log: Callable[[str], None] = print) -> LdapReport:
    report = LdapReport(options, code_revision())
    with running_slapd() as server, tempfile.TemporaryDirectory(prefix="scim-bench-ldap-") as tmp:
        gateway_base, direct_base = _subtree(server, "gateway"), _subtree(server, "direct")
        settings = _settings(server, gateway_base, options.connections)
        token, digest = make_token()
        gateway = start_ldap_gateway(Path(tmp), digest, settings, options.connections)
        try:
            log(f"provisioning {options.users:,} users through the gateway ...")
            url = gateway.base_url
            report.provision["gateway"] = asyncio.run(
                _provision(url, token, options.users, options.connections)
            )
            log(f"... and straight to slapd ({options.connections} ldap3 threads) ...")
            report.provision["direct"] = _direct_provision(
                server, direct_base, options.users, options.connections
            )
            log(f"listing them in pages of {PAGE} through the gateway ...")
            report.listing["gateway"], report.pages = asyncio.run(_list(url, token))
            log("... and straight from slapd (RFC 2696 pages) ...")
            report.listing["direct"] = _direct_list(server, direct_base)
        except RuntimeError as exc:
            report.errors.append(str(exc))
        finally:
            gateway.stop()
    return report


def format_ldap_report(report: LdapReport) -> str:
    o = report.options
    lines = [
        f"LDAP adapter bench: {o.users:,} users into slapd on loopback, {o.connections} workers "
        f"(provision), pages of {PAGE} (list); code {report.revision}",
        "",
        f"{'step':<28} {'target':<16} {'seconds':>9} {'users/s':>9}",
    ]
    for step, part in (
        ("provision (POST /Users)", report.provision),
        ("list (paged)", report.listing),
    ):
        gateway, direct = part.get("gateway"), part.get("direct")
        for name, side in (("gateway (HTTP)", gateway), ("ldap3 direct", direct)):
            if side is None:
                continue
            title = step if name.startswith("gateway") else ""
            lines.append(f"{title:<28} {name:<16} {side.seconds:>9.2f} {side.rate:>9.0f}")
        if gateway and direct and direct.seconds:
            lines.append(f"{'':<28} {'time ratio':<16} {gateway.seconds / direct.seconds:>8.1f}x")
    if report.pages:
        lines.append(f"\nthe gateway listed {report.pages} pages")
    problems = report.problems()
    lines += ["", "problems: " + ("; ".join(problems) if problems else "none")]
    return "\n".join(lines)
