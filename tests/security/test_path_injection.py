"""Ids that try to climb or end a legacy URL reach Acme HR as one percent-encoded segment.

An IdP may send any id back to us: a SCIM id is opaque. The REST adapter puts it into a
legacy path, so ``/``, ``..``, ``?``, ``#`` and ``\\`` in it must not make the gateway call
another legacy URL (another account, a team, the collection itself).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import unquote

from rest_support import Recorder
from security.hostile import ACME, ERROR, GROUP, PATCH, USER, Client
from support import TOKEN
from yarl import URL

#: (what the IdP puts in the URL after /Users/, the id the gateway reads from it)
HOSTILE = [
    ("acc_000001%2F..%2F..%2Fteams%2Fteam_0001", "acc_000001/../../teams/team_0001"),
    ("..%2Fteams", "../teams"),
    ("..", ".."),
    ("%2e%2e", ".."),
    (".", "."),
    ("%2E%2E%2F%2E%2E%2Fhealthz", "../../healthz"),
    ("acc_000001%3Fstatus%3Dsuspended", "acc_000001?status=suspended"),
    ("acc_000001%23x", "acc_000001#x"),
    ("acc_000001%5C..%5Cteams", "acc_000001\\..\\teams"),
    ("acc_000001%252F..", "acc_000001%2F.."),
    ("%2Fapi%2Fv1%2Faccounts", "/api/v1/accounts"),
]
#: A legacy path the adapter may produce: a collection, an item, or a team member.
SHAPE = re.compile(
    r"/api/v1/(accounts|teams)(/(?P<id>[^/?#\\]+)(/members/(?P<member>[^/?#\\]+))?)?"
)


async def seed(scim: Client) -> tuple[str, str]:
    user = {"schemas": [USER], "userName": "bjensen", "emails": [{"value": "b@example.com"}]}
    resp = await scim.post(f"{ACME}/Users", json=user)
    assert resp.status == 201, await resp.text()
    uid = (await resp.json())["id"]
    resp = await scim.post(f"{ACME}/Groups", json={"schemas": [GROUP], "displayName": "Staff"})
    assert resp.status == 201, await resp.text()
    return uid, (await resp.json())["id"]


def assert_one_segment_each(calls: Recorder, ids: set[str]) -> None:
    """Every legacy path has the expected shape, and each id in it is one encoded segment."""
    assert calls.calls, "no request reached the legacy app"
    for path in calls.paths():
        match = SHAPE.fullmatch(path)
        assert match, f"unexpected legacy path {path!r}"
        for part in ("id", "member"):
            segment = match.group(part)
            if segment is not None:
                assert segment not in (".", ".."), path
                assert unquote(segment) in ids, f"{path!r} carries an id nobody sent"


async def raw_request(scim: Client, method: str, target: str) -> int:
    """Send a request line exactly as given (no client normalises its dot segments)."""
    reader, writer = await asyncio.open_connection(scim.host, scim.port)
    try:
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {scim.host}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    return int(status_line.split()[1])


async def expect_refusal(resp: Any) -> None:
    assert 400 <= resp.status < 500, (resp.status, await resp.text())
    body = await resp.json(content_type=None)
    assert body["schemas"] == [ERROR]


async def test_hostile_user_ids_reach_only_their_own_encoded_segment(
    scim: Client, legacy_calls: Recorder
) -> None:
    uid, gid = await seed(scim)
    legacy_calls.clear()
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    put = {"schemas": [USER], "userName": "mallory"}
    for raw, _ in HOSTILE:
        if raw in (".", ".."):
            continue  # HTTP clients remove dot segments; sent raw below
        url = URL(f"{ACME}/Users/{raw}", encoded=True)
        await expect_refusal(await scim.get(url))
        await expect_refusal(await scim.put(url, json=put))
        await expect_refusal(await scim.patch(url, json=patch))
        await expect_refusal(await scim.delete(url))
        await expect_refusal(await scim.delete(URL(f"{ACME}/Groups/{raw}", encoded=True)))
    for method in ("GET", "DELETE"):
        for target in ("Users/..", "Users/.", "Groups/..", f"Users/{uid}/..", "Users/../Groups"):
            status = await raw_request(scim, method, f"{ACME}/{target}")
            assert 400 <= status < 500, (method, target, status)
    assert_one_segment_each(legacy_calls, {uid, gid} | {id for _, id in HOSTILE})
    # Everything is where it was.
    user = await (await scim.get(f"{ACME}/Users/{uid}")).json()
    assert (user["userName"], user["active"]) == ("bjensen", True)
    assert (await scim.get(f"{ACME}/Groups/{gid}")).status == 200


async def test_hostile_member_ids_reach_only_their_own_encoded_segment(
    scim: Client, legacy_calls: Recorder
) -> None:
    uid, gid = await seed(scim)
    legacy_calls.clear()
    for _, hostile in HOSTILE:
        ops = [{"op": "add", "path": "members", "value": [{"value": hostile}]}]
        resp = await scim.patch(
            f"{ACME}/Groups/{gid}", json={"schemas": [PATCH], "Operations": ops}
        )
        assert resp.status < 500, await resp.text()
        ops = [{"op": "remove", "path": f'members[value eq "{hostile}"]'}]
        resp = await scim.patch(
            f"{ACME}/Groups/{gid}", json={"schemas": [PATCH], "Operations": ops}
        )
        assert resp.status < 500, await resp.text()
    assert_one_segment_each(legacy_calls, {uid, gid} | {id for _, id in HOSTILE})
    group = await (await scim.get(f"{ACME}/Groups/{gid}")).json()
    assert group.get("members", []) == []
    assert (await scim.get(f"{ACME}/Users/{uid}")).status == 200


async def test_hostile_ids_in_bulk_paths_reach_only_their_own_encoded_segment(
    scim: Client, legacy_calls: Recorder
) -> None:
    uid, gid = await seed(scim)
    legacy_calls.clear()
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "title", "value": "x"}]}
    ops: list[dict[str, Any]] = []
    for raw, id in HOSTILE:
        for text in {raw, id}:
            ops += [
                {"method": "PATCH", "path": f"/Users/{text}", "data": patch},
                {"method": "DELETE", "path": f"/Users/{text}"},
                {"method": "DELETE", "path": f"/Groups/{text}"},
            ]
    bulk = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
    resp = await scim.post(f"{ACME}/Bulk", json=bulk)
    assert resp.status == 200, await resp.text()
    statuses = {int(op["status"]) for op in (await resp.json())["Operations"]}
    assert all(400 <= status < 500 for status in statuses), statuses
    sent = {raw for raw, _ in HOSTILE} | {id for _, id in HOSTILE}
    assert_one_segment_each(legacy_calls, {uid, gid} | sent)
    assert (await scim.get(f"{ACME}/Users/{uid}")).status == 200
    assert (await scim.get(f"{ACME}/Groups/{gid}")).status == 200
