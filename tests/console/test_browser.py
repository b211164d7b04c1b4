"""The console in a real headless Chromium (Debian's package, driven by Playwright):
login, every page, CSRF refusal, a guard release and an audit filter."""

from __future__ import annotations

import pytest
from console.conftest import (
    ADMIN_PASSWORD,
    OPERATOR_TOKEN,
    SCIM,
    AppOptions,
    Setup,
)
from playwright.async_api import Page, expect

from gateway.app import STORE
from gateway.state import AuditLog, Filters


@pytest.fixture
def app_options() -> AppOptions:
    return {"guard": {"max_deprovisions": 1, "window_seconds": 3600, "retry_after": 5}}


def url(setup: Setup, path: str) -> str:
    return str(setup.gateway.make_url(path))


async def sign_in(page: Page, setup: Setup, *, password: str = ADMIN_PASSWORD) -> None:
    await page.goto(url(setup, "/console/login"))
    await page.fill("#username", "alice")
    await page.fill("#password", password)
    await page.click("#sign-in")


async def test_a_visitor_is_sent_to_the_login_and_back_to_the_page_asked_for(
    page: Page, setup: Setup
) -> None:
    await page.goto(url(setup, "/console/audit?outcome=refused"))
    assert page.url.startswith(url(setup, "/console/login"))
    await page.fill("#username", "alice")
    await page.fill("#password", ADMIN_PASSWORD)
    await page.click("#sign-in")
    await expect(page.locator("h1")).to_have_text("Audit trail")
    assert page.url.endswith("/console/audit?outcome=refused")
    await expect(page.locator("#who")).to_have_text("alice · admin")


async def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    page: Page, setup: Setup
) -> None:
    await sign_in(page, setup, password="guess")
    await expect(page.locator("#login-error")).to_have_text("wrong user name, password or token")
    cookies = {c["name"] for c in await page.context.cookies()}
    assert "scim_console" not in cookies


async def test_the_session_cookie_is_httponly_and_samesite_strict(page: Page, setup: Setup) -> None:
    await sign_in(page, setup)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "scim_console")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/console/")
    assert len(cookie["value"]) >= 43  # 32 random bytes


async def test_every_page_renders(page: Page, setup: Setup) -> None:
    user = await setup.user("ann")
    await setup.settle()
    await sign_in(page, setup)
    row = page.locator("#app-acme")
    await expect(row).to_contain_text("rest")
    await expect(row).to_contain_text("ready")
    await expect(row).to_contain_text("closed")
    for link, heading in (
        ("#nav-guard", "Guard holds"),
        ("#nav-audit", "Audit trail"),
        ("#nav-reconcile", "Reconcile"),
        ("#nav-access", "Access review"),
        ("#nav-apps", "Apps"),
    ):
        await page.click(link)
        await expect(page.locator("h1")).to_have_text(heading)
    await page.click("#nav-audit")
    await page.click("#events tbody tr.event a")
    await expect(page.locator("#chain h2")).to_have_text("Hash chain: intact here")
    await expect(page.locator("#event")).to_contain_text(user)
    await page.click("#nav-audit")
    await page.click("#verify")
    await expect(page.locator("#verdict")).to_contain_text("OK: 1 event(s), the chain is intact")


async def test_a_reconcile_from_the_console_shows_its_findings(page: Page, setup: Setup) -> None:
    await setup.user("ann")
    await setup.acme.call("POST", "/accounts", {"account": {"login": "rogue"}})
    await setup.settle()
    await sign_in(page, setup)
    await page.click("#nav-reconcile")
    await page.click("#reconcile-acme")
    await expect(page.locator("h1")).to_have_text("Reconcile acme")
    for _ in range(20):  # the run goes on in the background: reload until it is done
        if "done" in (await page.locator("#run-state").inner_text()):
            break
        await page.wait_for_timeout(100)
        await page.reload()
    await expect(page.locator("#findings tr.kind-orphan")).to_contain_text("rogue")


async def test_a_form_with_a_forged_csrf_token_is_refused(page: Page, setup: Setup) -> None:
    await sign_in(page, setup)
    await page.click("#nav-audit")
    await page.locator("form.verify input[name=csrf]").evaluate("e => e.value = 'forged'")
    await page.click("#verify")
    await expect(page.locator("#error")).to_have_text("the form's CSRF token is wrong")


async def test_a_cross_site_post_with_the_cookie_but_no_token_is_refused(
    page: Page, setup: Setup
) -> None:
    await sign_in(page, setup)
    cookie = next(c for c in await page.context.cookies() if c["name"] == "scim_console")
    resp = await setup.gateway.post(
        "/console/guard/acme/release",
        data={"minutes": "60"},
        headers={"Authorization": "", "Cookie": f"scim_console={cookie['value']}"},
    )
    assert resp.status == 403
    assert "CSRF" in await resp.text()


async def test_a_guard_release_lets_the_held_deletes_pass_and_is_audited(
    page: Page, setup: Setup
) -> None:
    users = [await setup.user(n) for n in ("u1", "u2", "u3")]
    statuses = [(await setup.gateway.delete(f"{SCIM}/Users/{u}")).status for u in users]
    assert statuses == [204, 503, 503]
    await sign_in(page, setup)
    await page.click("#nav-guard")
    await expect(page.locator("#guard-acme .held-count")).to_have_text("2")
    await page.click("#guard-acme button.release")
    await expect(page.locator("#released")).to_contain_text("Released the guard of acme")
    retried = [(await setup.gateway.delete(f"{SCIM}/Users/{u}")).status for u in users[1:]]
    assert retried == [204, 204]
    await setup.settle()
    events, _ = await AuditLog(setup.gateway.app[STORE]).list(
        Filters(operation="admin.guard-release"), limit=5
    )
    assert [(e["app"], e["client"], e["outcome"]) for e in events] == [("acme", "alice", "success")]


async def test_an_operator_sees_the_holds_but_cannot_release_them(page: Page, setup: Setup) -> None:
    await page.goto(url(setup, "/console/login"))
    await page.fill("#token", OPERATOR_TOKEN)
    await page.click("#sign-in")
    await expect(page.locator("#who")).to_have_text("watcher · operator (read-only)")
    await page.click("#nav-guard")
    await expect(page.locator("#guard-acme")).to_be_visible()
    assert await page.locator("#guard-acme button.release").count() == 0
    csrf = await page.locator("form.who input[name=csrf]").input_value()
    cookie = next(c for c in await page.context.cookies() if c["name"] == "scim_console")
    resp = await setup.gateway.post(
        "/console/guard/acme/release",
        data={"csrf": csrf},
        headers={"Authorization": "", "Cookie": f"scim_console={cookie['value']}"},
    )
    assert resp.status == 403
    assert "may only read" in await resp.text()


async def test_the_audit_filter_shows_only_matching_events(page: Page, setup: Setup) -> None:
    await setup.user("ann")
    await setup.user("bob")
    await setup.gateway.get(f"{SCIM}/Users", headers={"Authorization": "Bearer wrong"})
    await setup.settle()
    await sign_in(page, setup)
    await page.click("#nav-audit")
    await expect(page.locator("#events tr.event")).to_have_count(3)
    await page.select_option("#f-outcome", "refused")
    await page.click("#f-apply")
    await expect(page.locator("#events tr.event")).to_have_count(1)
    await expect(page.locator("#events tr.event .action")).to_have_text("request")
    await page.select_option("#f-outcome", "")
    await page.fill("#f-user", "bob")
    await page.click("#f-apply")
    await expect(page.locator("#events tr.event .name")).to_have_text(["bob"])
    assert "user=bob" in page.url


async def test_the_apps_page_shows_the_last_error_with_its_reason(page: Page, setup: Setup) -> None:
    await setup.legacy.close()  # Acme HR goes down
    resp = await setup.gateway.get(f"{SCIM}/Users")
    assert resp.status >= 500
    await setup.settle()
    await sign_in(page, setup)
    cell = page.locator("#app-acme .last-error")
    await expect(cell).to_contain_text(f"list User: status {resp.status}")
    await page.click("#app-acme .last-error a")
    await expect(page.locator("#event")).to_contain_text("failed")
