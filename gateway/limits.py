"""Protecting legacy apps: bounded concurrency, a bounded wait queue, a time limit.

IdPs do not back off on 429 (IdP rule 22), so the gateway queues instead:
at most ``max_concurrency`` calls reach an app at once, at most ``max_queue``
more wait, and beyond that the caller gets 503 with ``Retry-After``. Every
adapter call must finish within ``call_timeout`` seconds (rule 21: IdPs give
up after 60 s); past it the caller gets 504 and the outcome of a write is
unknown, which the message says.

An adapter that makes one SCIM operation's calls a transaction
(``Capabilities.transactions``) holds a backend connection from the first call
to the commit, so its :meth:`~GuardedAdapter.transaction` takes one slot and
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
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from contextvars import ContextVar, Token
from types import TracebackType

from gateway import operation, telemetry
from gateway.breaker import BreakerOpen, CircuitBreaker, Verdict
from gateway.errors import ScimError, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from gateway.metrics import Metrics
from gateway.operation import Operation
from gateway.retry import reset_deadline, set_deadline
from gateway.sdk import Adapter
from gateway.spans import QUIET
from gateway.telemetry import error_type, is_failure
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

    async def acquire(self) -> None:
        """A slot, or QueueFull when ``max_queue`` callers wait already."""
        if not self._slots.locked():
            await self._slots.acquire()  # free: taken without a wait
            return
        if self._waiting >= self._max_queue:
            raise QueueFull("the app is busy; try again shortly", retry_after=1)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1

    def release(self) -> None:
        self._slots.release()


def request_deadline(seconds: float, op: Operation) -> AbstractAsyncContextManager[None]:
    """Cancel what runs inside after ``seconds``, and answer 504 for it.

    A write that had begun (the operation was opened) may or may not have
    reached the legacy app, so its outcome is recorded as unknown.
    """
    return _RequestDeadline(seconds, op)


class _RequestDeadline:
    """:func:`request_deadline`: a plain object rather than a generator, once per request."""

    __slots__ = ("_op", "_seconds", "_timer")

    def __init__(self, seconds: float, op: Operation) -> None:
        self._seconds = seconds
        self._op = op
        self._timer = asyncio.timeout(seconds)

    async def __aenter__(self) -> None:
        await self._timer.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        timer = self._timer
        try:
            await timer.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            if not timer.expired():
                raise  # a TimeoutError of something inside, not this deadline
            op = self._op
            if op.is_open:
                op.outcome = "unknown"
            raise UpstreamTimeout(
                f"the request did not finish within {self._seconds:g} s"
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
_WHAT: dict[str, str] = {
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


class GuardedAdapter(WrappedAdapter):
    """Wraps an adapter so every call passes one :class:`_CallGuard`.

    The guard does, in this order and once: the call's span (while tracing is
    on), the breaker's consent, a slot of the :class:`Limiter` (none inside a
    transaction that holds one), the ``call_timeout``; on the way out the
    breaker hears how the call ended and the call's latency (queue wait
    included) and error type go to the metrics.
    """

    def __init__(
        self,
        inner: Adapter,
        limiter: Limiter,
        breaker: CircuitBreaker | None = None,
        *,
        kind: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(inner)
        self.breaker = breaker
        self.kind = kind or type(inner).__name__
        self.metrics = metrics
        self._limiter = limiter

    def around(self, call: Call, resource_type: str | None) -> AbstractAsyncContextManager[None]:
        return _CallGuard(self, call, resource_type, self._limiter not in _HELD.get())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        held = _HELD.get()
        if not self.capabilities.transactions or self._limiter in held:
            async with self.inner.transaction():  # a slot per call, or the one held
                yield
            return
        async with _CallGuard(self, "transaction", None, True):
            token = _HELD.set(held | {self._limiter})
            try:
                async with self.inner.transaction():
                    yield
            finally:
                _HELD.reset(token)


class _CallGuard:
    """One adapter call's passage: a plain object, entered and left once."""

    __slots__ = (
        "_adapter",
        "_call",
        "_deadline",
        "_probe",
        "_resource_type",
        "_slot",
        "_span",
        "_start",
        "_timer",
    )

    def __init__(
        self, adapter: GuardedAdapter, call: Call | str, resource_type: str | None, slot: bool
    ) -> None:
        self._adapter = adapter
        self._call = call
        self._resource_type = resource_type
        self._slot = slot
        self._probe = False
        self._span: AbstractContextManager[object] | None = None
        self._timer: asyncio.Timeout | None = None
        self._deadline: Token[float | None] | None = None
        self._start = 0.0

    async def __aenter__(self) -> None:
        adapter = self._adapter
        self._start = time.perf_counter()
        # Not while tracing is off, nor in a quiet (unsampled) request (gateway/spans.py):
        # then the span's name and attributes are not even built.
        if telemetry.TRACER is not None and self._call != "transaction" and QUIET.get() is None:
            self._span = telemetry.span(
                f"adapter.{self._call}",
                **{
                    "scim.app": adapter.app,
                    "scim.resource_type": self._resource_type,
                    "adapter": adapter.kind,
                },
            )
            self._span.__enter__()
        try:
            if self._slot:
                await self._enter_slot()
        except BaseException as exc:
            self._finish(exc)
            raise

    async def _enter_slot(self) -> None:
        adapter, limiter = self._adapter, self._adapter._limiter
        if adapter.breaker is not None:
            try:
                self._probe = adapter.breaker.admit()
            except BreakerOpen:
                _note("breaker", "open")
                self._slot = False  # nothing to give back
                raise
        try:
            await limiter.acquire()
        except BaseException as exc:
            self._report(exc)
            self._slot = False
            raise
        timer = self._timer = asyncio.timeout(limiter.call_timeout)
        await timer.__aenter__()
        self._deadline = set_deadline(timer.when() or 0.0)  # retries inside end before it

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        error = exc
        try:
            if self._slot:
                error = await self._leave_slot(exc_type, exc, tb)
        finally:
            self._finish(error)
        if error is not exc and error is not None:
            raise error from None

    async def _leave_slot(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> BaseException | None:
        """Leave the timeout and the slot; the error the call ends with (a CallTimeout
        when the timeout cut it off)."""
        limiter = self._adapter._limiter
        error = exc
        try:
            if self._deadline is not None:
                reset_deadline(self._deadline)
            if self._timer is not None:
                await self._timer.__aexit__(exc_type, exc, tb)
        except TimeoutError:
            what = _WHAT.get(self._call, "a write")
            error = CallTimeout(
                f"the app did not answer {what} within {limiter.call_timeout:g} s; "
                "the outcome is unknown"
            )
            if self._call in WRITES or self._call == "transaction":
                mark_unknown()
        finally:
            limiter.release()
        self._report(error)
        return error

    def _report(self, error: BaseException | None) -> None:
        """The breaker hears how a call it let pass ended."""
        breaker = self._adapter.breaker
        if breaker is not None:
            breaker.record(self._probe, _verdict(error))

    def _finish(self, error: BaseException | None) -> None:
        """The call's metrics and the end of its span."""
        adapter = self._adapter
        if adapter.metrics is not None and self._call != "transaction":
            failure = error_type(error) if error is not None and is_failure(error) else None
            adapter.metrics.adapter_call(
                adapter.app, self._call, time.perf_counter() - self._start, failure
            )
        if self._span is not None:
            if error is None:
                self._span.__exit__(None, None, None)
            else:
                self._span.__exit__(type(error), error, error.__traceback__)
