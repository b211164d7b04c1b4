"""SCIM's ``startIndex``/``count`` window onto each paging style of a list endpoint.

* ``offset``: the window maps directly (``offset = startIndex - 1``), in calls of
  at most ``max_page`` records;
* ``page``: the pages covering the window are read and the window is cut out;
* ``cursor`` and ``link``: pages are walked from the first, never further than
  the end of the window (nor than ``max_depth``), so deep windows cost more;
* ``none``: one answer holds everything; the window is cut out of it.

The total comes from the answer's total field when the API has one. Without
it, the total is what was walked, plus one when another page exists, so a
client that pages until ``startIndex > totalResults`` keeps going; a window
past the end of such an API reports 0.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from adapters.rest.config import (
    CursorPaging,
    LinkPaging,
    NoPaging,
    OffsetPaging,
    PagePaging,
)
from gateway.sdk import InvalidValue, UpstreamError

Item = Any  # a record (a dict), or a bare id in a member list


@dataclass(slots=True)
class Chunk:
    """One answer of a list endpoint."""

    items: list[Item]
    total: int | None = None
    #: The next page: a cursor (cursor style) or a URL (link style); None at the end.
    next: str | None = None


@dataclass(slots=True)
class Window:
    items: list[Item]
    total: int


#: Reads one page: the paging query parameters, or the URL of a next page (link style).
Fetch = Callable[[dict[str, str], str | None], Awaitable[Chunk]]
Paging = NoPaging | OffsetPaging | PagePaging | CursorPaging | LinkPaging


async def read_window(paging: Paging, fetch: Fetch, start: int, count: int) -> Window:
    """Records ``start`` (1-based) to ``start + count - 1`` of a list, and the total."""
    start, count = max(start, 1), max(count, 0)
    if isinstance(paging, OffsetPaging):
        return await _offset(paging, fetch, start, count)
    if isinstance(paging, PagePaging):
        return await _pages(paging, fetch, start, count)
    if isinstance(paging, CursorPaging | LinkPaging):
        return await _walk(paging, fetch, start, count)
    chunk = await fetch({}, None)
    total = chunk.total if chunk.total is not None else len(chunk.items)
    return Window(chunk.items[start - 1 : start - 1 + count], total)


def _unknown_total(seen: int, more: bool) -> int:
    return seen + 1 if more else seen


async def _offset(p: OffsetPaging, fetch: Fetch, start: int, count: int) -> Window:
    position, wanted = start - 1, count
    got: list[Item] = []
    total: int | None = None
    more = True
    while True:
        limit = min(max(wanted, 1), p.max_page)  # count=0 still reads one, for the total
        chunk = await fetch({p.offset: str(position + p.first), p.limit: str(limit)}, None)
        if chunk.total is not None:
            total = chunk.total
        taken = chunk.items[:wanted]
        got.extend(taken)
        wanted -= len(taken)
        position += len(chunk.items)
        short = len(chunk.items) < limit if total is None else position >= total
        if not chunk.items or short:
            more = False
            break
        if wanted <= 0:
            break
    if total is None:
        total = _unknown_total(position, more) if position > start - 1 else 0
    return Window(got, total)


async def _pages(p: PagePaging, fetch: Fetch, start: int, count: int) -> Window:
    size = p.size
    first = (start - 1) // size
    last = (start - 1 + max(count, 1) - 1) // size
    got: list[Item] = []
    total: int | None = None
    more = True
    for index in range(first, last + 1):
        chunk = await fetch({p.page: str(index + p.first), p.per_page: str(size)}, None)
        if chunk.total is not None:
            total = chunk.total
        if len(chunk.items) > size:
            raise UpstreamError(
                f"the app answered {len(chunk.items)} records for a page of {size}; "
                "set paging.size to a page size the API honours"
            )
        got.extend(chunk.items)
        end = (index + 1) * size
        if len(chunk.items) < size or (total is not None and end >= total):
            more = False
            break
    skip = (start - 1) - first * size
    if total is None:
        seen = first * size + len(got)
        total = _unknown_total(seen, more) if got else 0
    return Window(got[skip : skip + count], total)


async def _walk(p: CursorPaging | LinkPaging, fetch: Fetch, start: int, count: int) -> Window:
    need = min(start - 1 + count, p.max_depth)
    params = {p.limit: str(p.size)} if p.limit else {}
    url: str | None = None
    got: list[Item] = []
    total: int | None = None
    seen_next: set[str] = set()
    more = True
    while True:
        chunk = await fetch(params, url)
        if chunk.total is not None:
            total = chunk.total
        got.extend(chunk.items)
        if not chunk.next or not chunk.items:
            more = False
            break
        if chunk.next in seen_next:
            raise UpstreamError("the app's next-page pointer goes round in a circle")
        seen_next.add(chunk.next)
        if len(got) >= need:
            break
        if isinstance(p, CursorPaging):
            params = {**params, p.cursor: chunk.next}
        else:
            params, url = {}, chunk.next
    if more and start - 1 + count > p.max_depth:
        raise InvalidValue(
            f"this app pages from the start; a search may reach at most {p.max_depth} records "
            "deep (paging.max_depth)"
        )
    if total is None:
        total = _unknown_total(len(got), more)
    return Window(got[start - 1 : start - 1 + count], total)
