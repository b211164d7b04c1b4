"""The circuit breaker in front of a failing Acme HR: opens, refuses at once, probes, closes."""

from __future__ import annotations

from fault_support import BASE, Rig

from gateway.demo.faults import Fault


async def _fail_reads(rig: Rig, id: str, times: int) -> None:
    rig.faults.next(Fault("status", status=500), times=times, method="GET")
    for _ in range(times):
        assert (await rig.scim.get(f"{BASE}/Users/{id}")).status == 502


async def _breakers(rig: Rig) -> object:
    ready = await rig.scim.get("/readyz")
    assert ready.status == 200  # an open breaker never takes the gateway out of rotation
    return (await ready.json())["breakers"]


async def test_three_failures_open_the_breaker_and_the_app_gets_no_more_calls(rig: Rig) -> None:
    id = await rig.created()
    await _fail_reads(rig, id, 3)
    calls = len(rig.faults.calls)
    assert await _breakers(rig) == {"acme": "open"}

    resp = await rig.scim.get(f"{BASE}/Users/{id}")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"  # the cool-down left
    assert "circuit breaker" in (await resp.json())["detail"]
    assert len(rig.faults.calls) == calls  # refused without a call
    op = rig.trail.last()
    assert op.extra == {"breaker": "open"} and op.outcome == "failed"

    rig.clock.now += 20
    write = await rig.set_title(id, "Boss")
    assert write.status == 503 and write.headers["Retry-After"] == "10"
    assert rig.accounts()[0]["title"] is None


async def test_after_the_cooldown_one_probe_passes_and_its_success_closes_the_breaker(
    rig: Rig,
) -> None:
    id = await rig.created()
    await _fail_reads(rig, id, 3)
    rig.clock.now += 30
    assert await _breakers(rig) == {"acme": "half_open"}
    assert (await rig.scim.get(f"{BASE}/Users/{id}")).status == 200
    assert await _breakers(rig) == {"acme": "closed"}
    assert (await rig.set_title(id, "Boss")).status == 200


async def test_a_failed_probe_opens_the_breaker_for_another_cooldown(rig: Rig) -> None:
    id = await rig.created()
    await _fail_reads(rig, id, 3)
    rig.clock.now += 30
    await _fail_reads(rig, id, 1)  # the probe
    assert await _breakers(rig) == {"acme": "open"}
    resp = await rig.scim.get(f"{BASE}/Users/{id}")
    assert resp.status == 503 and resp.headers["Retry-After"] == "30"


async def test_the_idps_own_mistakes_never_open_the_breaker(rig: Rig) -> None:
    await rig.created()
    for _ in range(5):
        assert (await rig.create()).status == 409  # Acme HR answers 409: the app is fine
        assert (await rig.scim.get(f"{BASE}/Users/acc_999999")).status == 404
    assert await _breakers(rig) == {"acme": "closed"}
    assert rig.faults.calls_to("POST") == 6


async def test_failures_with_successes_between_them_do_not_open_it(rig: Rig) -> None:
    id = await rig.created()
    for _ in range(4):
        await _fail_reads(rig, id, 2)
        assert (await rig.scim.get(f"{BASE}/Users/{id}")).status == 200
    assert await _breakers(rig) == {"acme": "closed"}  # 8 of 13 calls, under min_calls (20)
