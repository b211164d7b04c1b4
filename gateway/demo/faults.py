"""Faults for a legacy app on loopback: slow, failing, rate-limited, cut off or talking garbage.

:class:`Faults` is an aiohttp middleware put in front of a real app (Acme HR:
``create_legacy_app(..., faults=Faults())``), so the app's state stays real
and a test can check it against what the gateway answered. The test holds the
object and says what the next calls get (:meth:`Faults.next`), or a share of
all calls fails at random (:meth:`Faults.randomly`, for the soak bench).

Each :class:`Fault` hits ``before`` the app handles the call (nothing
changes) or ``after`` it (the change is made, and then the answer is lost,
late or unusable: the case where the caller cannot know what happened).

    status     answer ``status`` (500, 503, 429, ...) with ``Retry-After`` if given
    slow       hold the answer ``delay`` seconds, or until :meth:`Faults.release`
    drop       close the connection without an answer
    truncate   send the status line, headers and half the body, then close
    garbage    200 with a body that is not JSON (``application/json`` all the same)
    html       200 with an HTML page (a proxy's or a login page's)

:class:`Trail` records the gateway's operations as an audit trail would, and
:func:`acme_settings` is the gateway's config for such a run.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.config import Settings, parse_settings
from gateway.mapping.engine import MAPPINGS_DIR
from gateway.operation import Operation

Kind = Literal["status", "slow", "drop", "truncate", "garbage", "html"]
Phase = Literal["before", "after"]
_GARBAGE = b'{"account": {"account_id": "acc_'


@dataclass(frozen=True, slots=True)
class Fault:
    kind: Kind
    phase: Phase = "before"
    status: int = 500
    retry_after: str | None = None
    #: Seconds a slow answer is held; None: until :meth:`Faults.release`.
    delay: float | None = None

    @property
    def label(self) -> str:
        what = f"status {self.status}" if self.kind == "status" else self.kind
        return f"{what} {self.phase}"


@dataclass(slots=True)
class _Planned:
    fault: Fault
    times: int
    method: str | None
    path: str | None

    def matches(self, request: web.Request) -> bool:
        return (self.method is None or request.method == self.method) and (
            self.path is None or self.path in request.path
        )


class Faults:
    def __init__(self, prefix: str = "/api/", *, history: int = 10_000) -> None:
        #: Only calls under this path are touched (health checks pass).
        self.prefix = prefix
        #: The last ``history`` calls seen under ``prefix``: "METHOD /path", in order.
        self.calls: deque[str] = deque(maxlen=history)
        #: Calls seen under ``prefix`` in all.
        self.seen = 0
        #: How many times each fault (its label) was injected.
        self.injected: Counter[str] = Counter()
        self._plan: deque[_Planned] = deque()
        self._rate = 0.0
        self._mix: Sequence[Fault] = ()
        self._rng = random.Random(0)
        self._release = asyncio.Event()
        self._in_flight = 0
        self._settled = asyncio.Event()
        self._settled.set()

    def next(
        self, fault: Fault, *, times: int = 1, method: str | None = None, path: str | None = None
    ) -> None:
        """The next ``times`` calls (of ``method``, on a path holding ``path``) get ``fault``."""
        self._plan.append(_Planned(fault, times, method, path))

    def randomly(self, rate: float, mix: Sequence[Fault], rng: random.Random) -> None:
        """From now on, each call gets one of ``mix`` with probability ``rate``."""
        self._rate, self._mix, self._rng = rate, tuple(mix), rng

    def clear(self) -> None:
        self._plan.clear()
        self._rate = 0.0

    def release(self) -> None:
        """Let every answer held by a ``slow`` fault without a delay go (and later ones too)."""
        self._release.set()

    async def settled(self) -> None:
        """Wait until no call is being handled (held answers too): the state is final."""
        await self._settled.wait()

    def calls_to(self, method: str, path: str = "") -> int:
        return sum(1 for c in self.calls if c.startswith(f"{method} ") and path in c)

    def _pick(self, request: web.Request) -> Fault | None:
        for planned in self._plan:
            if planned.matches(request):
                planned.times -= 1
                if planned.times == 0:
                    self._plan.remove(planned)
                return planned.fault
        if self._mix and self._rng.random() < self._rate:
            return self._rng.choice(self._mix)
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(self.prefix):
            return await handler(request)
        self.calls.append(f"{request.method} {request.path}")
        self.seen += 1
        fault = self._pick(request)
        if fault is None:
            return await handler(request)
        self.injected[fault.label] += 1
        self._in_flight += 1
        self._settled.clear()
        try:
            return await self._inject(fault, request, handler)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._settled.set()

    async def _inject(
        self, fault: Fault, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if fault.kind == "slow" and fault.phase == "before":
            await self._hold(fault)
            return await handler(request)
        answer = None
        if fault.phase == "after":
            answer = await handler(request)
            if fault.kind == "slow":
                await self._hold(fault)
                return answer
        return await self._fail(fault, request, answer)

    async def _hold(self, fault: Fault) -> None:
        if fault.delay is None:
            await self._release.wait()
        else:
            await asyncio.sleep(fault.delay)

    async def _fail(
        self, fault: Fault, request: web.Request, answer: web.StreamResponse | None
    ) -> web.StreamResponse:
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
            body = {"error": "injected", "status": fault.status}
            return web.json_response(body, status=fault.status, headers=headers)
        if fault.kind == "garbage":
            return web.Response(body=_GARBAGE, content_type="application/json")
        if fault.kind == "html":
            page = "<html><body><h1>Service temporarily unavailable</h1></body></html>"
            return web.Response(text=page, content_type="text/html")
        if fault.kind == "truncate":
            sent = answer.body if isinstance(answer, web.Response) else None
            full = bytes(sent) if isinstance(sent, bytes) else _GARBAGE
            partial = web.StreamResponse(status=200)
            partial.content_type = "application/json"
            partial.content_length = len(full)
            await partial.prepare(request)
            await partial.write(full[: len(full) // 2])
            _cut(request)
            return partial
        _cut(request)  # drop
        return web.Response(status=500)  # never reaches the client


def _cut(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


class Trail:
    """A :class:`gateway.operation.Recorder` keeping every operation in memory (runs and tests)."""

    def __init__(self) -> None:
        #: Operations opened before their first legacy write, and all closed ones, in order.
        self.started: list[Operation] = []
        self.ended: list[Operation] = []

    async def opened(self, op: Operation) -> None:
        self.started.append(op)

    async def closed(self, op: Operation) -> None:
        self.ended.append(op)

    def last(self) -> Operation:
        return self.ended[-1]


def acme_settings(
    legacy_url: str,
    api_key: str,
    token: str,
    *,
    rest: Mapping[str, Any] | None = None,
    app: Mapping[str, Any] | None = None,
) -> Settings:
    """One gateway app ``acme`` on Acme HR at ``legacy_url`` (the shipped rest.yaml and mapping).

    ``rest`` overrides keys of the REST settings (``timeout``, ``retry``), ``app`` of the app.
    """
    settings = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    settings["base_url"] = legacy_url
    settings["auth"]["key"] = api_key
    settings.update(rest or {})
    config = {
        "adapter": "rest",
        "mapping": str(MAPPINGS_DIR / "acme-hr"),
        "settings": settings,
        "auth": {"tokens": [{"name": "idp", "secret": token}]},
        **(app or {}),
    }
    return parse_settings({"apps": {"acme": config}}, source="<faults>")
