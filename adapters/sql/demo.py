"""``scim-gateway sql demo``: the payroll database behind a gateway, on a PostgreSQL you name.

Loads deploy/sql/payroll.sql into a schema of its own (``payroll_demo``; kept
between runs, ``--reset`` starts afresh), and serves it as app ``payroll``
through the SQL adapter in table mode with the shipped mapping
(``mappings/payroll``). It prints a token and curl commands; ``--walkthrough``
provisions a user and a group through SCIM and prints the rows each step
wrote, read straight from the database.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import yaml
from aiohttp import web

from adapters.sql.config import NAME
from adapters.sql.sqltext import quote_ident
from gateway.app import create_app
from gateway.config import Settings, parse_settings
from gateway.mapping.engine import MAPPINGS_DIR

__all__ = ["PayrollDemo", "demo_settings", "make_payroll_demo", "serve_payroll"]

PAYROLL_SQL = MAPPINGS_DIR.parent / "deploy" / "sql" / "payroll.sql"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True)
class PayrollDemo:
    port: int
    token: str
    schema: str
    dsn: str = field(repr=False)  # never printed

    @property
    def scim(self) -> str:
        return f"http://127.0.0.1:{self.port}/apps/payroll/scim/v2"


def make_payroll_demo(port: int, dsn: str, schema: str) -> PayrollDemo:
    if not NAME.fullmatch(schema):
        raise ValueError("--schema must be a plain SQL name")
    return PayrollDemo(port, secrets.token_urlsafe(24), schema, dsn)


def demo_settings(demo: PayrollDemo) -> Settings:
    raw = yaml.safe_load((MAPPINGS_DIR / "payroll" / "sql.yaml").read_text("utf-8"))
    raw["dsn"] = demo.dsn
    for section in ("users", "groups"):
        raw[section]["schema"] = demo.schema
    app = {
        "adapter": "sql",
        "mapping": str(MAPPINGS_DIR / "payroll"),
        "settings": raw,
        "auth": {"tokens": [{"name": "demo-idp", "secret": demo.token}]},
    }
    server = {"host": "127.0.0.1", "port": demo.port}
    return parse_settings({"server": server, "apps": {"payroll": app}}, source="<sql demo>")


async def prepare_schema(dsn: str, schema: str, reset: bool) -> bool:
    """Load payroll.sql into ``schema`` unless it holds it already; True when loaded."""
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        if reset:
            await conn.execute(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f"{schema}.emp_master")
        if exists:
            return False
        async with conn.transaction():
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
            await conn.execute(f"SET LOCAL search_path TO {quote_ident(schema)}")
            await conn.execute(PAYROLL_SQL.read_text("utf-8"))
        return True
    finally:
        await conn.close()


def _curl(demo: PayrollDemo, method: str, path: str, body: Any = None) -> str:
    parts = ["curl", "-s", "-X", method, "-H", f"Authorization: Bearer {demo.token}"]
    if body is not None:
        parts += ["-H", "Content-Type: application/scim+json", "-d", json.dumps(body)]
    return shlex.join([*parts, demo.scim + path])


def _user() -> dict[str, Any]:
    return {
        "schemas": [USER_URN],
        "userName": f"bjensen.{secrets.token_hex(2)}",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "title": "Payroll Clerk",
        "active": True,
    }


def instructions(demo: PayrollDemo) -> str:
    schema = demo.schema
    lines = [
        f"scim-gateway sql demo: SCIM at {demo.scim}",
        f"  in front of the payroll database, schema {schema} (deploy/sql/payroll.sql)",
        f"  bearer token for the gateway: {demo.token}",
        "",
        "Provision through SCIM, then look at the rows:",
        "  " + _curl(demo, "POST", "/Users", _user()),
        "  " + _curl(demo, "GET", "/Users?filter=userName%20sw%20%22bjensen%22"),
        f'  psql "$DSN" -c "SELECT emp_no, logon_name, emp_status FROM {schema}.emp_master"',
        "",
        "Ctrl-C stops the gateway; the schema stays (--reset starts afresh).",
    ]
    return "\n".join(lines)


async def _rows(demo: PayrollDemo, sql: str, *args: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(demo.dsn, timeout=10)
    try:
        await conn.execute(f"SET search_path TO {quote_ident(demo.schema)}")
        return [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
            for r in await conn.fetch(sql, *args)
        ]
    finally:
        await conn.close()


async def walkthrough(demo: PayrollDemo) -> list[list[dict[str, Any]]]:
    """Create a user, a unit with her in it, deactivate her; the rows after each step."""
    headers = {"Authorization": f"Bearer {demo.token}"}
    seen: list[list[dict[str, Any]]] = []
    employee = "SELECT emp_no, logon_name, first_nm, last_nm, email_addr, emp_status "
    employee += "FROM emp_master WHERE emp_no = $1"
    async with aiohttp.ClientSession(headers=headers) as http:

        async def send(what: str, method: str, path: str, body: Any) -> dict[str, Any]:
            async with http.request(method, demo.scim + path, json=body) as resp:
                print(f"SCIM {method} {path} -> {resp.status}  ({what})", flush=True)
                if resp.status >= 300:
                    raise RuntimeError(f"{what} failed: {resp.status} {await resp.text()}")
                return await resp.json() if resp.status != 204 else {}

        async def show(sql: str, *args: Any) -> None:
            rows = await _rows(demo, sql, *args)
            print(f"  rows: {json.dumps(rows)}", flush=True)
            seen.append(rows)

        user = await send("create a user", "POST", "/Users", _user())
        await show(employee, int(user["id"]))
        group = {
            "schemas": [GROUP_URN],
            "displayName": f"Payroll Clerks {secrets.token_hex(2)}",
            "members": [{"value": user["id"]}],
        }
        unit = await send("create a unit with her in it", "POST", "/Groups", group)
        await show(
            "SELECT unit_id, emp_no FROM org_unit_member WHERE unit_id = $1", int(unit["id"])
        )
        deactivate = {
            "schemas": [PATCH_URN],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        }
        await send("deactivate her (as Entra ID does)", "PATCH", f"/Users/{user['id']}", deactivate)
        await show(employee, int(user["id"]))
    return seen


async def serve_payroll(
    demo: PayrollDemo,
    *,
    reset: bool = False,
    run_walkthrough: bool = False,
    exit_after: bool = False,
) -> list[list[dict[str, Any]]]:
    loaded = await prepare_schema(demo.dsn, demo.schema, reset)
    print(f"schema {demo.schema}: {'payroll.sql loaded' if loaded else 'kept as it was'}")
    runner = web.AppRunner(create_app(demo_settings(demo), source="<sql demo>"), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", demo.port).start()
        print(instructions(demo), flush=True)
        seen: list[list[dict[str, Any]]] = []
        if run_walkthrough:
            print("\nWalkthrough:", flush=True)
            seen = await walkthrough(demo)
        if not exit_after:
            await asyncio.Event().wait()
        return seen
    finally:
        await runner.cleanup()
