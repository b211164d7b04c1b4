"""A whole provisioning conversation with known secrets; none shows in any log or answer.

The gateway serves app ``rm`` through the REST adapter and the shipped Redmine mapping
(which writes users' passwords) to a Redmine-like app on loopback whose API key is a
known secret. The IdP's token, the API key and every password must stay out of every
log line (all loggers, DEBUG), every answer (errors included), every span and every
row of the audit trail (which here keeps the values written, passwords masked).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient
from rest_fakes import RedmineLike
from rest_support import API_KEY, ServerFactory
from security.hostile import GROUP, PATCH, USER, ClientFactory
from security.sinks import Sinks
from support import digest
from telemetry_support import collected_spans, span_texts

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.mapping.engine import MAPPINGS_DIR

RM = "/apps/rm/scim/v2"
INBOUND = "idp-INBOUND-token-3b9f0c21d4e5"
PASSWORDS = ["Pw-first-K9x2m4", "Pw-second-Q7r1t8", "Pw-third-Z3v6b0", "Pw-fourth-L5n8c1"]
SECRETS = [INBOUND, API_KEY, *PASSWORDS]


class Conversation:
    """The IdP's side: every answer kept, as status, headers and body text."""

    def __init__(self, client: TestClient[Any, Any], legacy: RedmineLike, state: Path) -> None:
        self.client = client
        self.legacy = legacy
        self.state = state  # the state store's file (the audit trail)
        self.answers: list[str] = []

    async def send(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        headers = {"Authorization": f"Bearer {INBOUND}", **headers}
        resp = await self.client.request(method, f"{RM}{path}", json=body, headers=headers)
        text = await resp.text()
        self.answers.append(f"{resp.status} {dict(resp.headers)} {text}")
        return resp.status, (await resp.json(content_type=None)) if text else None


def stored_texts(path: Path) -> Iterator[str]:
    """Every row of every table of the state store (the audit trail), as text."""
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                yield repr(row)


@pytest.fixture
async def idp(
    aiohttp_server: ServerFactory,
    aiohttp_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
    sinks: Sinks,
    tmp_path: Path,
) -> AsyncIterator[Conversation]:
    # Both servers run as `scim-gateway serve` does, without an access log: a request line
    # holds what the client put in the URL, and the legacy app's log is not the gateway's.
    legacy = RedmineLike()
    redmine = await aiohttp_server(legacy.app(), access_log=None)
    monkeypatch.setenv("REDMINE_URL", str(redmine.make_url("")).rstrip("/"))
    monkeypatch.setenv("REDMINE_API_KEY", API_KEY)
    monkeypatch.setenv("REDMINE_USER_EXTERNAL_ID_FIELD", "1")
    monkeypatch.setenv("REDMINE_GROUP_EXTERNAL_ID_FIELD", "2")
    rest = yaml.safe_load((MAPPINGS_DIR / "redmine" / "rest.yaml").read_text("utf-8"))
    app = {
        "adapter": "rest",
        "mapping": "redmine",
        "settings": rest,
        "auth": {"tokens": [{"name": "idp", "sha256": digest(INBOUND)}]},
    }
    # The audit keeps values too (passwords must come out masked), in a state store.
    state = {"url": f"sqlite:///{tmp_path / 'state.db'}", "audit": {"values": True}}
    settings = parse_settings({"apps": {"rm": app}, "log_level": "DEBUG", "state": state})
    with collected_spans(lean=True) as spans:  # serve's own tracer
        gateway = create_app(settings)
        client = await aiohttp_client(await aiohttp_server(gateway, access_log=None))
        conversation = Conversation(client, legacy, tmp_path / "state.db")
        sinks.add("answers", lambda: conversation.answers)
        sinks.add("spans", lambda: span_texts(spans.get_finished_spans()))
        sinks.add("audit", lambda: stored_texts(tmp_path / "state.db"))
        yield conversation
        await client.close()  # the audit's last events are committed at shutdown


def user(name: str, password: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": name,
        "password": password,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
        **extra,
    }


async def test_a_provisioning_conversation_leaks_no_secret(idp: Conversation, sinks: Sinks) -> None:
    status, created = await idp.send("POST", "/Users", user("bjensen", PASSWORDS[0]))
    assert status == 201, created
    uid = created["id"]
    assert (await idp.send("GET", f"/Users/{uid}"))[0] == 200
    status, found = await idp.send("GET", '/Users?filter=userName%20eq%20"bjensen"')
    assert (status, found["totalResults"]) == (200, 1)
    ops = [{"op": "replace", "path": "password", "value": PASSWORDS[1]}]
    assert (await idp.send("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": ops}))[
        0
    ] == 200
    assert (await idp.send("PUT", f"/Users/{uid}", user("bjensen", PASSWORDS[2])))[0] == 200
    assert idp.legacy.users[int(uid)]["password"] == PASSWORDS[2]  # it did travel, to Redmine
    ops = [{"op": "replace", "value": {"active": False}}]
    status, deactivated = await idp.send(
        "PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": ops}
    )
    assert (status, deactivated["active"]) == (200, False)

    status, other = await idp.send("POST", "/Users", user("jsmith", PASSWORDS[3]))
    assert status == 201, other
    group = {"schemas": [GROUP], "displayName": "Staff", "members": [{"value": uid}]}
    status, staff = await idp.send("POST", "/Groups", group)
    assert status == 201, staff
    ops = [
        {"op": "add", "path": "members", "value": [{"value": other["id"]}]},
        {"op": "remove", "path": f'members[value eq "{uid}"]'},
    ]
    assert (
        await idp.send("PATCH", f"/Groups/{staff['id']}", {"schemas": [PATCH], "Operations": ops})
    )[0] == 204

    # Refusals, each carrying a secret somewhere in what it refuses.
    assert (await idp.send("POST", "/Users", user("bjensen", PASSWORDS[0])))[0] == 409
    bad = user("x", PASSWORDS[1], active=PASSWORDS[1])
    assert (await idp.send("POST", "/Users", bad))[0] == 400
    ops = [{"op": "replace", "path": f'password[value eq "{PASSWORDS[2]}"]', "value": PASSWORDS[2]}]
    assert (await idp.send("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": ops}))[
        0
    ] == 400
    assert (await idp.send("GET", f'/Users?filter=password%20eq%20"{PASSWORDS[3]}"'))[0] == 400
    # A resource id in the path is an identifier: the access line and the audit record
    # it by design (which account was asked for), so no secret is put there.
    assert (await idp.send("GET", "/Users/404404"))[0] == 404
    wrong = {"Authorization": f"Bearer {INBOUND}x"}
    assert (await idp.send("GET", "/Users", **wrong))[0] == 401
    assert (await idp.send("GET", "/Users", Authorization=API_KEY))[0] == 401

    assert (await idp.send("DELETE", f"/Groups/{staff['id']}"))[0] == 204
    assert (await idp.send("DELETE", f"/Users/{uid}"))[0] == 204
    assert (await idp.send("DELETE", f"/Users/{other['id']}"))[0] == 204

    await idp.client.close()  # shut down: the audit commits what it still holds
    stored = list(stored_texts(idp.state))
    assert any('"password":"****"' in row and "bjensen" in row for row in stored)
    sinks.assert_no_secret(SECRETS, expect=["logs", "answers", "spans", "audit"])
