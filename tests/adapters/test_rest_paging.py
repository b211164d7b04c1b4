"""SCIM startIndex/count windows onto each paging style: offset, page, cursor, Link, none."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from rest_support import (
    Opener,
    Recorder,
    ServerFactory,
    json_response,
    make_adapter,
    opened_fixture,  # noqa: F401 - the `opened` fixture
)

from adapters.rest import RestAdapter
from gateway.sdk import InvalidValue, Query, UpstreamError

RECORDS = [{"id": str(n), "login": f"user{n:02}"} for n in range(1, 24)]  # 23 records
WINDOWS = [(1, 5), (3, 4), (4, 4), (6, 10), (20, 10), (23, 1), (30, 5), (1, 100)]


def _expected(start: int, count: int) -> list[str]:
    return [r["id"] for r in RECORDS[start - 1 : start - 1 + count]]


def _int(request: web.Request, name: str, default: int) -> int:
    return int(request.query.get(name, default))


async def offset_list(request: web.Request) -> web.Response:
    offset, limit = _int(request, "offset", 0), min(_int(request, "limit", 10), 7)  # API caps at 7
    return json_response({"items": RECORDS[offset : offset + limit], "total": len(RECORDS)})


async def offset_list_without_total(request: web.Request) -> web.Response:
    offset, limit = _int(request, "start", 1) - 1, _int(request, "size", 10)
    return json_response(RECORDS[offset : offset + limit])


async def page_list(request: web.Request) -> web.Response:
    page, size = _int(request, "page", 1), _int(request, "per_page", 5)
    items = RECORDS[(page - 1) * size : page * size]
    return json_response({"data": {"rows": items, "count": len(RECORDS)}})


async def cursor_list(request: web.Request) -> web.Response:
    start, size = int(request.query.get("after", "0")), _int(request, "limit", 5)
    items = RECORDS[start : start + size]
    more = start + size < len(RECORDS)
    return json_response({"items": items, "meta": {"next": str(start + size) if more else None}})


async def link_list(request: web.Request) -> web.Response:
    page, size = _int(request, "page", 1), _int(request, "per_page", 5)
    items = RECORDS[(page - 1) * size : page * size]
    headers = {}
    if page * size < len(RECORDS):
        nxt = request.url.with_query({"page": str(page + 1), "per_page": str(size)})
        headers["Link"] = f'<{nxt.path_qs}>; rel="next", <{request.url.path}?page=1>; rel="first"'
    return json_response(items, **headers)


async def none_list(request: web.Request) -> web.Response:
    return json_response({"users": RECORDS})


STYLES: dict[str, tuple[Any, dict[str, Any]]] = {
    "offset": (
        offset_list,
        {"items": "items", "total": "total", "paging": {"style": "offset", "max_page": 7}},
    ),
    "page": (
        page_list,
        {"items": "data.rows", "total": "data.count", "paging": {"style": "page", "size": 5}},
    ),
    "cursor": (
        cursor_list,
        {
            "items": "items",
            "paging": {"style": "cursor", "cursor": "after", "next": "meta.next", "size": 5},
        },
    ),
    "link": (link_list, {"items": "", "paging": {"style": "link", "size": 5}}),
    "none": (none_list, {"items": "users", "paging": {"style": "none"}}),
}


async def _adapter(
    aiohttp_server: ServerFactory,
    opened: Opener,
    handler: Any,
    list_call: dict[str, Any],
    recorder: Recorder,
) -> RestAdapter:
    app = web.Application(middlewares=[recorder.middleware])
    app.router.add_get("/api/items", handler)
    server = await aiohttp_server(app)
    users = {
        "get": {"path": "/items/{id}"},
        "list": {"path": "/items", **list_call},
        "create": {"path": "/items"},
        "update": {"path": "/items/{id}"},
        "delete": {"path": "/items/{id}"},
    }
    return await opened(make_adapter(str(server.make_url("/api")), users=users))


@pytest.mark.parametrize("start,count", WINDOWS)
@pytest.mark.parametrize("style", list(STYLES))
async def test_every_paging_style_answers_the_window_asked_for(
    aiohttp_server: ServerFactory, opened: Opener, style: str, start: int, count: int
) -> None:
    handler, list_call = STYLES[style]
    adapter = await _adapter(aiohttp_server, opened, handler, list_call, Recorder())
    page = await adapter.search(Query("User", start_index=start, count=count))
    assert [r.id for r in page.records] == _expected(start, count)
    if style in ("offset", "page", "none") or start + count > len(RECORDS):
        assert page.total == len(RECORDS)
    else:  # no total field: what was walked, plus one since more pages exist
        assert page.total > start - 1 + count


async def test_offset_paging_maps_the_window_directly(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    recorder = Recorder()
    adapter = await _adapter(aiohttp_server, opened, *STYLES["offset"], recorder)
    await adapter.search(Query("User", start_index=3, count=4))
    assert [c.query for c in recorder.calls] == [{"offset": "2", "limit": "4"}]
    recorder.clear()
    await adapter.search(Query("User", start_index=1, count=12))  # max_page 7: two calls
    assert [c.query for c in recorder.calls] == [
        {"offset": "0", "limit": "7"},
        {"offset": "7", "limit": "5"},
    ]


async def test_page_paging_reads_only_the_pages_covering_the_window(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    recorder = Recorder()
    adapter = await _adapter(aiohttp_server, opened, *STYLES["page"], recorder)
    await adapter.search(Query("User", start_index=4, count=4))
    assert [c.query["page"] for c in recorder.calls] == ["1", "2"]
    recorder.clear()
    await adapter.search(Query("User", start_index=11, count=5))
    assert [c.query["page"] for c in recorder.calls] == ["3"]


@pytest.mark.parametrize("style", ["cursor", "link"])
async def test_walking_styles_stop_at_the_end_of_the_window(
    aiohttp_server: ServerFactory, opened: Opener, style: str
) -> None:
    recorder = Recorder()
    adapter = await _adapter(aiohttp_server, opened, *STYLES[style], recorder)
    await adapter.search(Query("User", start_index=1, count=5))
    assert len(recorder.calls) == 1
    recorder.clear()
    await adapter.search(Query("User", start_index=8, count=4))  # records 8-11: pages 2 and 3
    assert len(recorder.calls) == 3


@pytest.mark.parametrize("style", ["cursor", "link"])
async def test_a_window_deeper_than_max_depth_is_refused(
    aiohttp_server: ServerFactory, opened: Opener, style: str
) -> None:
    handler, list_call = STYLES[style]
    deep = {**list_call, "paging": {**list_call["paging"], "max_depth": 10}}
    adapter = await _adapter(aiohttp_server, opened, handler, deep, Recorder())
    with pytest.raises(InvalidValue, match="max_depth"):
        await adapter.search(Query("User", start_index=9, count=5))


async def test_a_short_list_within_max_depth_answers_past_its_end(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    handler, list_call = STYLES["cursor"]
    deep = {**list_call, "paging": {**list_call["paging"], "max_depth": 100}}
    adapter = await _adapter(aiohttp_server, opened, handler, deep, Recorder())
    page = await adapter.search(Query("User", start_index=90, count=20))
    assert (page.records, page.total) == ([], 23)


async def test_offset_paging_without_a_total_counts_what_it_walked(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    paging = {"style": "offset", "offset": "start", "limit": "size", "first": 1, "max_page": 50}
    adapter = await _adapter(
        aiohttp_server, opened, offset_list_without_total, {"paging": paging}, Recorder()
    )
    middle = await adapter.search(Query("User", start_index=1, count=10))
    last = await adapter.search(Query("User", start_index=21, count=10))
    past = await adapter.search(Query("User", start_index=40, count=10))
    assert (len(middle.records), middle.total) == (10, 11)  # more may follow
    assert ([r.id for r in last.records], last.total) == (["21", "22", "23"], 23)
    assert (past.records, past.total) == ([], 0)


async def test_a_count_of_zero_gives_only_the_total(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await _adapter(aiohttp_server, opened, *STYLES["offset"], Recorder())
    page = await adapter.search(Query("User", count=0))
    assert (page.records, page.total) == ([], 23)


async def test_a_next_link_to_another_host_is_not_followed(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    async def elsewhere(request: web.Request) -> web.Response:
        link = '<http://attacker.example/steal?page=2>; rel="next"'
        return json_response(RECORDS[:5], Link=link)

    adapter = await _adapter(
        aiohttp_server, opened, elsewhere, {"paging": {"style": "link", "size": 5}}, Recorder()
    )
    with pytest.raises(UpstreamError, match="another host"):
        await adapter.search(Query("User", count=10))


async def test_a_page_larger_than_asked_for_is_an_upstream_error(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    async def too_many(request: web.Request) -> web.Response:
        return json_response({"data": {"rows": RECORDS, "count": len(RECORDS)}})

    call = {"items": "data.rows", "total": "data.count", "paging": {"style": "page", "size": 5}}
    adapter = await _adapter(aiohttp_server, opened, too_many, call, Recorder())
    with pytest.raises(UpstreamError, match=r"paging\.size"):
        await adapter.search(Query("User", count=3))
