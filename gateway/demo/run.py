"""``scim-gateway demo``: Acme HR and a gateway in front of it, in one process.

Acme HR (:mod:`gateway.demo.legacy_app`) keeps its data in SQLite; the
gateway serves it as app ``acme`` through the REST adapter with the shipped
mapping (``mappings/acme-hr``). Nothing to install, nothing to configure:
the tokens are made up for the run. ``--walkthrough`` also provisions a
user and a group through SCIM and shows each change landing in Acme HR.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from gateway.app import create_app
from gateway.config import Settings, parse_settings
from gateway.demo.legacy_app import create_legacy_app
from gateway.mapping.engine import MAPPINGS_DIR

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True)
class Demo:
    port: int
    legacy_port: int
    token: str
    legacy_key: str
    db: str
    #: The gateway's state store (its audit trail), a SQLite file; None: no audit trail.
    state: str | None = None
    #: The operators' token for /admin/ (the audit trail); None: no admin calls.
    admin_token: str | None = None

    @property
    def scim(self) -> str:
        return f"http://127.0.0.1:{self.port}/apps/acme/scim/v2"

    @property
    def legacy(self) -> str:
        return f"http://127.0.0.1:{self.legacy_port}/api/v1"


def demo_settings(demo: Demo) -> Settings:
    """The gateway's config for the demo: one app on the REST adapter and the Acme HR mapping."""
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    # The shipped settings read these two from the environment; the demo knows them.
    rest["base_url"] = demo.legacy
    rest["auth"]["key"] = demo.legacy_key
    app = {
        "adapter": "rest",
        "mapping": str(MAPPINGS_DIR / "acme-hr"),
        "settings": rest,
        "auth": {"tokens": [{"name": "demo-idp", "secret": demo.token}]},
    }
    server = {"host": "127.0.0.1", "port": demo.port}
    raw: dict[str, Any] = {"server": server, "apps": {"acme": app}}
    if demo.state is not None:
        raw["state"] = {"url": f"sqlite:///{demo.state}"}
    if demo.admin_token is not None:
        raw["admin"] = {"tokens": [{"name": "demo-operator", "secret": demo.admin_token}]}
    return parse_settings(raw, source="<demo>")


def _curl(demo: Demo, method: str, url: str, body: Any = None, *, legacy: bool = False) -> str:
    auth = f"X-Api-Key: {demo.legacy_key}" if legacy else f"Authorization: Bearer {demo.token}"
    parts = ["curl", "-s", "-X", method, "-H", auth]
    if body is not None:
        parts += ["-H", "Content-Type: application/scim+json", "-d", json.dumps(body)]
    return shlex.join([*parts, url])


def steps(demo: Demo) -> list[tuple[str, str, str, Any, str]]:
    """The walkthrough: (what, method, SCIM path, body, Acme HR path that shows the result).

    A fresh Acme HR numbers its first account acc_000001 and its first team team_0001.
    """
    user = {
        "schemas": [USER_URN],
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        "title": "Tour Guide",
        "active": True,
    }
    group = {
        "schemas": [GROUP_URN],
        "displayName": "Tour Guides",
        "members": [{"value": "acc_000001"}],
    }
    deactivate = {
        "schemas": [PATCH_URN],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    return [
        ("create a user", "POST", "/Users", user, "/accounts?login=bjensen"),
        ("create a group with her in it", "POST", "/Groups", group, "/teams/team_0001"),
        (
            "deactivate her (as Entra ID does)",
            "PATCH",
            "/Users/acc_000001",
            deactivate,
            "/accounts/acc_000001",
        ),
    ]


def instructions(demo: Demo) -> str:
    lines = [
        f"scim-gateway demo: SCIM at {demo.scim}",
        f"  in front of Acme HR, a legacy REST app at {demo.legacy} (SQLite: {demo.db})",
        f"  bearer token for the gateway: {demo.token}",
        f"  Acme HR's own API key:       {demo.legacy_key}",
        "",
        "Provision through SCIM, then look in Acme HR:",
    ]
    for what, method, path, body, legacy_path in steps(demo):
        lines += [
            f"  # {what}",
            "  " + _curl(demo, method, demo.scim + path, body),
            "  " + _curl(demo, "GET", demo.legacy + legacy_path, legacy=True),
        ]
    if demo.state is not None and demo.admin_token is not None:
        lines += [
            "",
            f"Every SCIM operation is on record in the audit trail (SQLite: {demo.state}):",
            f'  curl -s -H "Authorization: Bearer {demo.admin_token}" '
            f"http://127.0.0.1:{demo.port}/admin/audit",
            f"The operator's console: http://127.0.0.1:{demo.port}/console/ "
            "(sign in with that admin token)",
        ]
    lines += ["", "Ctrl-C stops both."]
    return "\n".join(lines)


async def walkthrough(demo: Demo) -> list[dict[str, Any]]:
    """Run the steps; return what Acme HR holds after each one."""
    seen = []
    scim_headers = {"Authorization": f"Bearer {demo.token}"}
    legacy_headers = {"X-Api-Key": demo.legacy_key}
    async with aiohttp.ClientSession() as http:
        for what, method, path, body, legacy_path in steps(demo):
            async with http.request(
                method, demo.scim + path, json=body, headers=scim_headers
            ) as resp:
                print(f"SCIM {method} {path} -> {resp.status}  ({what})", flush=True)
                if resp.status >= 300:
                    raise RuntimeError(f"{what} failed: {resp.status} {await resp.text()}")
            async with http.get(demo.legacy + legacy_path, headers=legacy_headers) as resp:
                state = await resp.json()
            print(f"  Acme HR GET {legacy_path}: {json.dumps(state)}", flush=True)
            seen.append(state)
        if demo.admin_token is not None and demo.state is not None:
            await _show_audit(demo, http, len(seen))
    return seen


async def _show_audit(demo: Demo, http: aiohttp.ClientSession, expected: int) -> None:
    """Print the walkthrough's audit events (closes are committed a few ms after the answer)."""
    headers = {"Authorization": f"Bearer {demo.admin_token}"}
    url = f"http://127.0.0.1:{demo.port}/admin/audit"
    events: list[dict[str, Any]] = []
    for _ in range(50):
        async with http.get(url, headers=headers) as resp:
            events = (await resp.json())["events"]
        final = [e for e in events if e["outcome"] != "pending"]
        if len(final) >= expected and len(final) == len(events):
            break
        await asyncio.sleep(0.05)
    print("\nThe audit trail (GET /admin/audit):", flush=True)
    admin = [e for e in events if str(e["operation"]).startswith("admin.")]
    for event in events:
        if event in admin:
            continue
        changed = ",".join(event.get("changed") or [])
        print(
            f"  #{event['seq']} {event['time']} {event['client']} {event['operation']} "
            f"{event['resource_type']} {event['scim_id']} ({event['name']}) "
            f"{event['outcome']} {event['status']}" + (f" changed: {changed}" if changed else ""),
            flush=True,
        )
    if admin:
        print(
            f"  ... and {len(admin)} admin event(s): these reads of the trail, by "
            f"{admin[0]['client']}, are on record too",
            flush=True,
        )


async def serve(
    demo: Demo, *, run_walkthrough: bool = False, exit_after: bool = False
) -> list[dict[str, Any]]:
    """Serve both apps; with ``exit_after``, return (the walkthrough's states) once started."""
    legacy = web.AppRunner(create_legacy_app(demo.db, demo.legacy_key), access_log=None)
    gateway = web.AppRunner(create_app(demo_settings(demo), source="<demo>"), access_log=None)
    await legacy.setup()
    await web.TCPSite(legacy, "127.0.0.1", demo.legacy_port).start()
    try:
        await gateway.setup()
        await web.TCPSite(gateway, "127.0.0.1", demo.port).start()
        print(instructions(demo), flush=True)
        states = []
        if run_walkthrough:
            print("\nWalkthrough:", flush=True)
            states = await walkthrough(demo)
        if not exit_after:
            await asyncio.Event().wait()
        return states
    finally:
        await gateway.cleanup()
        await legacy.cleanup()


def make_demo(port: int, legacy_port: int, db: str | None) -> Demo:
    token = os.environ.get("SCIM_GATEWAY_DEMO_TOKEN") or secrets.token_urlsafe(24)
    key = secrets.token_urlsafe(18)
    if db is None:
        db = str(Path(tempfile.mkdtemp(prefix="acme-hr-")) / "acme.sqlite")
    state = str(Path(tempfile.mkdtemp(prefix="scim-gateway-state-")) / "state.db")
    return Demo(port, legacy_port, token, key, db, state, secrets.token_urlsafe(24))
