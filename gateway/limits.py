"""Protecting legacy apps: bounded concurrency, a bounded wait queue, a time limit.

IdPs do not back off on 429 (IdP rule 22), so the gateway queues instead:
at most ``max_concurrency`` calls reach an app at once, at most ``max_queue``
more wait, and beyond that the caller gets 503 with ``Retry-After``. Every
adapter call must finish within ``call_timeout`` seconds (rule 21: IdPs give
up after 60 s); past it the caller gets 504 and the outcome of a write is
unknown, which the message says.

An adapter that makes one SCIM operation's calls a transaction
(``Capabilities.transactions``) holds a backend connection from the first call
to the commit, so its :meth:`~BoundedAdapter.transaction` takes one slot and
one ``call_timeout`` for the whole operation, and the calls inside take none:
were each to wait for a slot of its own while the transaction holds a
connection, ``max_concurrency`` transactions could each hold a connection and
wait forever for a slot (or the pool for a connection). Other adapters keep a
slot per call.

Over all of that, :func:`request_deadline` bounds a whole request (``request_timeout``):
reading the body, waiting for slots, every call. Past it the legacy call in
flight is cancelled (its connection released, its transaction rolled back) and
the caller gets 504.

A :class:`~gateway.breaker.CircuitBreaker`, when given, is asked before the
queue: while it is open, calls are refused at once (503, ``Retry-After``)
rather than queued for an app that is down, and the refused request's
operation says so (``op.extra["breaker"] = "open"``). The queue being full
says nothing about the app, so :class:`QueueFull` does not count against it.
A write abandoned at ``call_timeout`` is recorded with the outcome ``unknown``
(an adapter marks its own timeouts, knowing whether the call was sent).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from contextvars import ContextVar

from gateway import operation
from gateway.breaker import BreakerOpen, CircuitBreaker, Verdict
from gateway.errors import ScimError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.operation import Operation
from gateway.retry import deadline as call_deadline
from gateway.sdk import Adapter
from gateway.wrapping import WRITES, Call, WrappedAdapter


class QueueFull(UpstreamUnavailable):
    """The gateway's own wait queue for the app is full (not a failure of the app)."""


class CallTimeout(UpstreamTimeout):
    """The call outlived ``call_timeout`` and was abandoned wherever it was."""


class Limiter:
    def __init__(self, max_concurrency: int, max_queue: int, call_timeout: float) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self._max_queue = max_queue
        self._waiting = 0
        self.call_timeout = call_timeout

    @asynccontextmanager
    async def slot(self, what: str) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self._max_queue:
            raise QueueFull("the app is busy; try again shortly", retry_after=1)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            async with asyncio.timeout(self.call_timeout) as limit:
                with call_deadline(limit.when() or 0.0):  # retries inside must end before it
                    yield
        except TimeoutError:
            raise CallTimeout(
                f"the app did not answer {what} within {self.call_timeout:g} s; "
                "the outcome is unknown"
            ) from None
        finally:
            self._slots.release()


@asynccontextmanager
async def request_deadline(seconds: float, op: Operation) -> AsyncIterator[None]:
    """Cancel what runs inside after ``seconds``, and answer 504 for it.

    A write that had begun (the operation was opened) may or may not have
    reached the legacy app, so its outcome is recorded as unknown.
    """
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            yield
    except TimeoutError:
        if not timer.expired():
            raise  # a TimeoutError of something inside, not this deadline
        if op.is_open:
            op.outcome = "unknown"
        raise UpstreamTimeout(
            f"the request did not finish within {seconds:g} s"
            + ("; the outcome of its writes is unknown" if op.is_open else "")
        ) from None


def _verdict(error: BaseException | None) -> Verdict:
    """What a call's end says about the app's health."""
    if isinstance(error, QueueFull):
        return "abandoned"  # the gateway's queue, not the app
    if isinstance(error, UpstreamError):
        return "failed"
    if error is None or isinstance(error, ScimError):
        return "succeeded"  # a 4xx: the app answered, the request was at fault
    return "abandoned"  # cancelled, or a fault of the gateway's own


def _note(key: str, value: str) -> None:
    op = operation.current()
    if op is not None:
        op.extra[key] = value


def mark_unknown() -> None:
    """The current operation's write may or may not have happened at the legacy app."""
    op = operation.current()
    if op is not None:
        op.outcome = "unknown"


#: How a call is named in a 503/504 detail ("the app is busy: a create waited ...").
_WHAT: dict[Call, str] = {
    "get": "a read",
    "search": "a search",
    "create": "a create",
    "update": "an update",
    "delete": "a delete",
    "add_members": "a member add",
    "remove_members": "a member removal",
}

#: The limiters whose slot the current task holds for a whole transaction.
_HELD: ContextVar[frozenset[Limiter]] = ContextVar("scim_gateway_held_slots", default=frozenset())


class BoundedAdapter(WrappedAdapter):
    """Wraps an adapter so every call goes through a :class:`Limiter`."""

    def __init__(
        self, inner: Adapter, limiter: Limiter, breaker: CircuitBreaker | None = None
    ) -> None:
        super().__init__(inner)
        self.breaker = breaker
        self._limiter = limiter

    def around(self, call: Call, resource_type: str | None) -> AbstractAsyncContextManager[None]:
        """A slot for one call; none inside a transaction that holds one already."""
        if self._limiter in _HELD.get():
            return nullcontext()
        return self._guarded(_WHAT[call], write=call in WRITES)

    @asynccontextmanager
    async def _guarded(self, what: str, *, write: bool) -> AsyncIterator[None]:
        """The breaker's consent, then a slot; the call's end is reported to the breaker."""
        breaker = self.breaker
        probe = False
        if breaker is not None:
            try:
                probe = breaker.admit()
            except BreakerOpen:
                _note("breaker", "open")
                raise
        error: BaseException | None = None
        try:
            async with self._limiter.slot(what):
                yield
        except BaseException as exc:
            error = exc
            if write and isinstance(exc, CallTimeout):
                mark_unknown()
            raise
        finally:
            if breaker is not None:
                breaker.record(probe, _verdict(error))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        held = _HELD.get()
        if not self.capabilities.transactions or self._limiter in held:
            async with self.inner.transaction():  # a slot per call, or the one held
                yield
            return
        async with self._guarded("a write", write=True):
            token = _HELD.set(held | {self._limiter})
            try:
                async with self.inner.transaction():
                    yield
            finally:
                _HELD.reset(token)
