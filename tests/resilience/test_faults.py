"""Each fault of a legacy app, through the gateway: the SCIM answer, the legacy state, the audit.

For every fault: what the IdP is told (status, scimType, Retry-After), that
Acme HR's state matches it (a reported failure changed nothing, or the
outcome is reported unknown), and what the operation record says.
"""

from __future__ import annotations

import email.utils
import time

from fault_support import BASE, Rig, RigFactory

from gateway.demo.faults import Fault

# -- answers from the app ------------------------------------------------------------------


async def test_a_500_on_create_is_a_502_sent_once_and_creates_nothing(rig: Rig) -> None:
    rig.faults.next(Fault("status", status=500), method="POST")
    resp = await rig.create()
    assert resp.status == 502
    assert (await resp.json())["status"] == "502"
    assert rig.accounts() == []
    assert rig.faults.calls_to("POST") == 1  # a create is never repeated after an answer
    assert rig.trail.last().outcome == "failed"


async def test_a_503_on_a_read_is_retried_after_the_apps_retry_after(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("status", status=503, retry_after="2"), method="GET")
    resp = await rig.scim.get(f"{BASE}/Users/{id}")
    assert resp.status == 200
    assert (await resp.json())["userName"] == "bjensen"
    assert rig.waits == [2]
    assert rig.faults.calls_to("GET") == 2
    assert rig.trail.last().outcome == "success"


async def test_a_429_asking_for_more_than_the_budget_is_a_503_with_that_retry_after(
    rig: Rig,
) -> None:
    rig.faults.next(Fault("status", status=429, retry_after="120"), method="POST")
    resp = await rig.create()
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "120"
    assert rig.waits == []  # not worth waiting for: the IdP is told at once
    assert rig.accounts() == []
    assert rig.trail.last().outcome == "failed"


async def test_a_429_with_an_http_date_in_the_budget_is_waited_for_and_the_create_sent_again(
    rig: Rig,
) -> None:
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    rig.faults.next(Fault("status", status=429, retry_after=when), method="POST")
    resp = await rig.create()
    assert resp.status == 201
    assert len(rig.waits) == 1 and 1 <= rig.waits[0] <= 4
    assert [a["login"] for a in rig.accounts()] == ["bjensen"]  # one account, not two
    assert rig.faults.calls_to("POST") == 2


async def test_a_503_without_retry_after_on_a_delete_is_retried_with_jittered_backoff(
    rig: Rig,
) -> None:
    id = await rig.created()
    rig.faults.next(Fault("status", status=503), times=2, method="DELETE")
    resp = await rig.scim.delete(f"{BASE}/Users/{id}")
    assert resp.status == 204
    assert rig.accounts() == []
    assert len(rig.waits) == 2
    assert 0 <= rig.waits[0] <= 0.05 and 0 <= rig.waits[1] <= 0.1  # [0, base * 2**n]


async def test_a_delete_failing_on_every_attempt_is_a_503_and_the_account_stays(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("status", status=503, retry_after="1"), times=3, method="DELETE")
    resp = await rig.scim.delete(f"{BASE}/Users/{id}")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "1"
    assert rig.faults.calls_to("DELETE") == 3  # attempts: 3
    assert [a["account_id"] for a in rig.accounts()] == [id]
    assert rig.trail.last().outcome == "failed"


async def test_a_patch_is_not_repeated_unless_the_app_declares_it_idempotent(
    make_rig: RigFactory,
) -> None:
    plain = await make_rig()
    id = await plain.created()
    plain.faults.next(Fault("status", status=503), method="PATCH")
    assert (await plain.set_title(id, "Boss")).status == 503
    assert plain.faults.calls_to("PATCH") == 1
    assert plain.accounts()[0]["title"] is None

    idempotent = await make_rig(rest={"retry": {"idempotent_patch": True, "base": 0.01}})
    id = await idempotent.created()
    idempotent.faults.next(Fault("status", status=503), method="PATCH")
    assert (await idempotent.set_title(id, "Boss")).status == 200
    assert idempotent.faults.calls_to("PATCH") == 2
    assert idempotent.accounts()[0]["title"] == "Boss"


# -- broken connections and late answers -----------------------------------------------------


async def test_a_create_whose_answer_is_cut_off_is_reported_unknown(rig: Rig) -> None:
    rig.faults.next(Fault("truncate", phase="after"), method="POST")
    resp = await rig.create()
    assert resp.status == 502
    assert "unknown" in (await resp.json())["detail"]
    assert rig.trail.last().outcome == "unknown"
    assert rig.faults.calls_to("POST") == 1  # never sent twice
    assert [a["login"] for a in rig.accounts()] == ["bjensen"]  # it did happen


async def test_a_create_whose_connection_drops_is_unknown_and_not_sent_again(rig: Rig) -> None:
    rig.faults.next(Fault("drop"), method="POST")
    resp = await rig.create()
    # 502 saying the account may exist (gateway/dedupe.py): the retry looks it up first.
    assert resp.status == 502
    assert "may exist" in (await resp.json())["detail"]
    assert rig.trail.last().outcome == "unknown"
    assert rig.faults.calls_to("POST") == 1
    assert rig.accounts() == []  # this time it did not happen: both are "unknown"


async def test_a_dropped_connection_on_a_delete_is_retried(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("drop", phase="after"), method="DELETE")
    resp = await rig.scim.delete(f"{BASE}/Users/{id}")
    # The first DELETE went through, its answer was lost; the second finds nothing: done.
    assert resp.status == 204
    assert rig.trail.last().outcome == "success"
    assert rig.accounts() == []
    assert rig.faults.calls_to("DELETE") == 2


async def test_a_delete_done_whose_answer_was_lost_and_whose_retry_fails_is_unknown(
    rig: Rig,
) -> None:
    id = await rig.created()
    rig.faults.next(Fault("drop", phase="after"), method="DELETE")  # done, answer lost
    rig.faults.next(Fault("status", status=500), method="DELETE")
    resp = await rig.scim.delete(f"{BASE}/Users/{id}")
    assert resp.status == 502
    assert "unknown" in (await resp.json())["detail"]
    assert rig.trail.last().outcome == "unknown"
    assert rig.accounts() == []  # the first attempt did it


async def test_a_delete_whose_answer_came_too_late_is_done_when_the_retry_finds_nothing(
    rig: Rig,
) -> None:
    id = await rig.created()
    rig.faults.next(Fault("slow", phase="after"), method="DELETE")  # done, answer held
    resp = await rig.scim.delete(f"{BASE}/Users/{id}")
    assert resp.status == 204
    assert rig.trail.last().outcome == "success"
    assert rig.accounts() == []
    assert rig.faults.calls_to("DELETE") == 2
    rig.faults.release()


async def test_a_patch_outliving_the_timeout_is_a_504_with_an_unknown_outcome(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("slow"), method="PATCH")  # held until released
    resp = await rig.set_title(id, "Boss")
    assert resp.status == 504
    body = await resp.json()
    assert body["status"] == "504" and "unknown" in body["detail"]
    assert rig.trail.last().outcome == "unknown"
    rig.faults.release()
    await rig.faults.settled()
    assert rig.accounts()[0]["title"] == "Boss"  # it landed after all: hence "unknown"


async def test_a_read_outliving_the_timeout_is_retried(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("slow"), method="GET")
    resp = await rig.scim.get(f"{BASE}/Users/{id}")
    assert resp.status == 200
    assert rig.faults.calls_to("GET") == 2
    rig.faults.release()


# -- garbage -----------------------------------------------------------------------------------


async def test_garbage_in_answer_to_a_read_is_a_502(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("garbage"), method="GET")
    resp = await rig.scim.get(f"{BASE}/Users/{id}")
    assert resp.status == 502
    assert "not JSON" in (await resp.json())["detail"]
    assert rig.trail.last().outcome == "failed"


async def test_an_html_page_instead_of_a_list_is_a_502(rig: Rig) -> None:
    await rig.created()
    rig.faults.next(Fault("html"), method="GET")
    resp = await rig.scim.get(f"{BASE}/Users", params={"filter": 'userName eq "bjensen"'})
    assert resp.status == 502
    assert (await resp.json())["status"] == "502"


async def test_garbage_after_a_patch_is_read_back_and_the_answer_is_true(rig: Rig) -> None:
    id = await rig.created()
    rig.faults.next(Fault("garbage", phase="after"), method="PATCH")
    resp = await rig.set_title(id, "Boss")
    assert resp.status == 200
    assert (await resp.json())["title"] == "Boss"
    assert rig.accounts()[0]["title"] == "Boss"


async def test_a_retried_write_whose_first_answer_was_lost_is_unknown_even_if_the_last_fails(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(rest={"retry": {"idempotent_patch": True, "base": 0.01}})
    id = await rig.created()
    rig.faults.next(Fault("truncate", phase="after"), method="PATCH")  # done, answer lost
    rig.faults.next(Fault("status", status=500), method="PATCH")  # the retry fails
    resp = await rig.set_title(id, "Boss")
    assert resp.status == 502
    assert "unknown" in (await resp.json())["detail"]
    assert rig.trail.last().outcome == "unknown"
    assert rig.accounts()[0]["title"] == "Boss"  # the first attempt did it
