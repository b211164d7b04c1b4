"""Console pages through plain HTTP with the admin token (no browser): downloads, paging,
a tampered event, refusals."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import yaml
from console.conftest import ADMIN_TOKEN, OPERATOR_TOKEN, SCIM, Setup

from gateway.app import STORE, create_app
from gateway.config import load_settings

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def test_the_access_review_downloads_as_csv_and_json_lines(setup: Setup) -> None:
    await setup.user("-1+1")
    await setup.settle()
    resp = await setup.gateway.get("/console/access/acme.csv", headers=ADMIN)
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == 'attachment; filename="access-review-acme.csv"'
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [(r["app"], r["name"], r["provisioned_by"]) for r in rows] == [("acme", "'-1+1", "idp")]
    resp = await setup.gateway.get("/console/access/acme.json", headers=ADMIN)
    assert [json.loads(line)["name"] for line in (await resp.text()).splitlines()] == ["-1+1"]


async def test_the_audit_trail_pages_fifty_events_at_a_time(setup: Setup) -> None:
    for _ in range(52):
        await setup.gateway.get(f"{SCIM}/Users", headers={"Authorization": "Bearer wrong"})
    await setup.settle()
    first = await (await setup.gateway.get("/console/audit?outcome=refused", headers=ADMIN)).text()
    assert first.count('class="event ') == 50
    assert 'id="next-page" href="/console/audit?outcome=refused&amp;after=50"' in first
    second = await setup.gateway.get("/console/audit?outcome=refused&after=50", headers=ADMIN)
    text = await second.text()
    assert text.count('class="event ') == 2
    assert 'id="next-page"' not in text
    assert 'id="first-page"' in text


async def test_an_edited_event_shows_a_broken_chain_and_verify_says_so(setup: Setup) -> None:
    await setup.user("ann")
    await setup.user("bob")
    await setup.settle()
    async with setup.gateway.app[STORE].db.transaction() as tx:
        await tx.execute("UPDATE audit_event SET name = 'mallory' WHERE id = 1")
    page = await (await setup.gateway.get("/console/audit/event/1", headers=ADMIN)).text()
    assert "Hash chain: BROKEN here" in page
    assert "its content does NOT match its hash: it was edited" in page
    verdict = await setup.gateway.post("/console/audit/verify", headers=ADMIN)
    assert "BROKEN after 0 good event(s)" in await verdict.text()


async def test_template_values_are_escaped(setup: Setup) -> None:
    await setup.user("<script>alert(1)</script>")
    await setup.settle()
    page = await (await setup.gateway.get("/console/audit", headers=ADMIN)).text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_pages_refuse_a_wrong_token_and_an_operator_cannot_start_a_reconcile(
    setup: Setup,
) -> None:
    wrong = await setup.gateway.get(
        "/console/", headers={"Authorization": "Bearer nope"}, allow_redirects=False
    )
    assert (wrong.status, wrong.headers["Location"]) == (303, "/console/login?next=%2Fconsole%2F")
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    refused = await setup.gateway.post("/console/reconcile/acme", headers=operator)
    assert refused.status == 403
    assert (await setup.gateway.get("/console/audit/event/99", headers=ADMIN)).status == 404
    bad = await setup.gateway.get("/console/audit?since=last+tuesday", headers=ADMIN)
    assert bad.status == 400
    assert "not an ISO date" in await bad.text()


async def test_a_login_redirect_never_leaves_the_console(setup: Setup) -> None:
    page = await setup.gateway.get("/console/login?next=//evil.example/x")
    assert 'name="next" value="/console/"' in await page.text()


async def test_behind_tls_the_session_cookie_is_secure(
    setup: Setup, aiohttp_client: Any, tmp_path: Path
) -> None:
    raw = yaml.safe_load(setup.config.read_text("utf-8"))
    raw["server"] = {"trusted_proxies": ["127.0.0.1/32"]}  # a TLS-terminating proxy
    config = tmp_path / "behind-tls.yaml"
    config.write_text(yaml.safe_dump(raw), "utf-8")
    client = await aiohttp_client(create_app(load_settings(config), source=str(config)))
    tls = {"X-Forwarded-Proto": "https"}
    form = await client.get("/console/login", headers=tls)
    login_cookie = form.cookies["scim_console_login"]
    assert login_cookie["secure"] and login_cookie["httponly"]
    signed_in = await client.post(
        "/console/login",
        data={"csrf": login_cookie.value, "token": ADMIN_TOKEN, "next": "/console/"},
        headers={**tls, "Cookie": f"scim_console_login={login_cookie.value}"},
        allow_redirects=False,
    )
    assert signed_in.status == 303
    session = signed_in.cookies["scim_console"]
    assert (bool(session["secure"]), session["samesite"], session["path"]) == (
        True,
        "Strict",
        "/console/",
    )
