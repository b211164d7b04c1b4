"""The mass-deprovisioning guard: holds deletes and deactivations past the threshold."""

from __future__ import annotations

import asyncio

import pytest
from safety.conftest import ADMIN_TOKEN, BASE, Audit, Client, Gateway
from safety.lax_app import LaxApp

from gateway.cli import main
from gateway.config import GuardConfig
from gateway.guard import MAX_KEYS, DeprovisionHeld, Guard, MemoryGuardStore
from gateway.guard_control import GuardError, HttpGuardControl
from gateway.operation import Operation

PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _guard(limit: int = 3, window: float = 60.0) -> tuple[Guard, Clock]:
    clock = Clock()
    config = GuardConfig(max_deprovisions=limit, window_seconds=window)
    return Guard("crm", config, MemoryGuardStore(), clock), clock


async def _verdicts(guard: Guard, ids: range) -> list[str]:
    found = []
    for i in ids:
        op = Operation("crm", "DELETE", f"/Users/{i}")
        try:
            await guard.check(op, "delete", "User", str(i))
        except DeprovisionHeld as exc:
            found.append(type(exc).__name__)
        else:
            found.append(op.extra.get("guard", "passed"))
    return found


async def test_the_guard_passes_the_threshold_and_holds_the_rest() -> None:
    guard, _ = _guard()
    assert await _verdicts(guard, range(5)) == ["passed"] * 3 + ["DeprovisionHeld"] * 2
    state = await guard.status()
    assert (state.recent, state.held) == (3, ("delete User/3", "delete User/4"))


async def test_a_held_operation_is_refused_and_says_so() -> None:
    guard, _ = _guard(limit=1)
    await _verdicts(guard, range(1))
    op = Operation("crm", "DELETE", "/Users/9")
    with pytest.raises(DeprovisionHeld, match="held by the deprovisioning guard") as caught:
        await guard.check(op, "delete", "User", "9")
    assert (caught.value.status, caught.value.headers) == (503, {"Retry-After": "300"})
    assert (op.outcome, op.extra) == ("refused", {"guard": "held"})


async def test_the_window_slides_with_the_clock() -> None:
    guard, clock = _guard(limit=2, window=60.0)
    assert await _verdicts(guard, range(3)) == ["passed", "passed", "DeprovisionHeld"]
    clock.now += 61
    assert await _verdicts(guard, range(3, 5)) == ["passed", "passed"]


async def test_a_release_lets_each_held_operation_pass_once() -> None:
    guard, _ = _guard(limit=1)
    await _verdicts(guard, range(3))  # 0 passes, 1 and 2 held
    state = await guard.release()
    assert (state.held, state.released) == ((), ("delete User/1", "delete User/2"))
    assert await _verdicts(guard, range(1, 3)) == ["released", "released"]
    assert await _verdicts(guard, range(1, 3)) == ["DeprovisionHeld"] * 2  # used up
    assert await _verdicts(guard, range(7, 8)) == ["DeprovisionHeld"]  # a new one is held


async def test_a_release_for_minutes_lets_everything_pass_until_then() -> None:
    guard, clock = _guard(limit=1, window=3600.0)
    await _verdicts(guard, range(2))
    state = await guard.release(minutes=10)
    assert state.open_until == clock.now + 600
    assert await _verdicts(guard, range(10, 20)) == ["released"] * 10
    clock.now += 601
    assert await _verdicts(guard, range(20, 22)) == ["DeprovisionHeld"] * 2


async def test_held_keys_are_bounded() -> None:
    guard, _ = _guard(limit=1)
    await _verdicts(guard, range(MAX_KEYS + 6))
    held = (await guard.status()).held
    assert len(held) == MAX_KEYS
    assert held[0] == "delete User/6"  # the oldest went first


# -- through the gateway, into a real legacy app on loopback ---------------------------------


def _seed(lax: LaxApp, count: int) -> list[str]:
    for i in range(count):
        lax.users[str(100 + i)] = {"id": str(100 + i), "login": f"u{i}", "active": True}
    return [str(100 + i) for i in range(count)]


async def _delete_all(scim: Client, ids: list[str]) -> list[int]:
    statuses = []
    for id in ids:
        resp = await scim.delete(f"{BASE}/Users/{id}")
        statuses.append(resp.status)
        if resp.status == 503:
            body = await resp.json()
            assert body["status"] == "503"
            assert "held by the deprovisioning guard" in body["detail"]
            assert resp.headers["Retry-After"] == "300"
    return statuses


async def test_a_mass_delete_is_held_then_released_on_command(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway(guard={"max_deprovisions": 3, "window_seconds": 3600})
    ids = _seed(lax, 10)
    assert await _delete_all(scim, ids) == [204] * 3 + [503] * 7
    assert len(lax.users) == 7
    assert len(lax.seen.paths("DELETE")) == 3  # nothing held reached the app
    held = [op for op in audit.closes if op.extra.get("guard") == "held"]
    assert [(op.status, op.outcome) for op in held] == [(503, "refused")] * 7
    assert not any(op in audit.opens for op in held)  # never opened: no legacy write

    # The IdP cannot release it; an operator can.
    refused = await scim.post("/admin/guard/lax/release")
    assert refused.status == 401
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    resp = await scim.post("/admin/guard/lax/release", headers=admin)
    assert resp.status == 200
    assert len((await resp.json())["released"]) == 7

    assert await _delete_all(scim, ids[3:]) == [204] * 7  # the IdP's retries
    assert lax.users == {}
    released = [op for op in audit.closes if op.extra.get("guard") == "released"]
    assert len(released) == 7


async def test_deactivations_count_and_are_held(gateway: Gateway, lax: LaxApp) -> None:
    scim = await gateway(guard={"max_deprovisions": 1})
    ids = _seed(lax, 2)
    off = {
        "schemas": [PATCH],
        "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
    }
    first = await scim.patch(f"{BASE}/Users/{ids[0]}", json=off)
    second = await scim.patch(f"{BASE}/Users/{ids[1]}", json=off)
    assert (first.status, second.status) == (200, 503)
    assert [u["active"] for u in lax.users.values()] == [False, True]
    assert lax.seen.paths("POST") == [f"/items/{ids[0]}/disable"]
    rename = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "name.givenName", "value": "X"}],
    }
    assert (await scim.patch(f"{BASE}/Users/{ids[1]}", json=rename)).status == 200


async def test_the_cli_shows_and_releases_the_guard_of_a_running_gateway(
    gateway: Gateway,
    lax: LaxApp,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    scim = await gateway(guard={"max_deprovisions": 1})
    ids = _seed(lax, 3)
    await _delete_all(scim, ids)
    url = str(scim.make_url(""))
    monkeypatch.setenv("SCIM_GATEWAY_ADMIN_TOKEN", ADMIN_TOKEN)
    code = await asyncio.to_thread(main, ["guard", "status", "--app", "lax", "--url", url])
    assert code == 0
    out = capsys.readouterr().out
    assert "held: 2" in out and f"delete User/{ids[2]}" in out
    code = await asyncio.to_thread(main, ["guard", "release", "--app", "lax", "--url", url])
    assert code == 0
    assert "released, waiting for the IdP's retry: 2" in capsys.readouterr().out
    assert await _delete_all(scim, ids[1:]) == [204, 204]


async def test_the_admin_calls_need_an_admin_token_and_a_guarded_app(gateway: Gateway) -> None:
    scim = await gateway()
    control = HttpGuardControl(str(scim.make_url("")), "not-the-admin-token")
    with pytest.raises(GuardError, match="401"):
        await control.status("lax")
    control = HttpGuardControl(str(scim.make_url("")), ADMIN_TOKEN)
    with pytest.raises(GuardError, match="404"):
        await control.status("lax")  # no guard configured for it
