"""One SCIM operation, as the audit trail, traces, metrics and logs see it.

The HTTP layer opens an :class:`Operation` for every request that reaches an
app (refused ones too), the service fills in what it learns (the action, the
resource, the names of the attributes that change), and the HTTP layer closes
it with the status. Bulk requests get one child operation per bulk operation.

A :class:`Recorder` receives operations twice for writes: :meth:`Recorder.opened`
just before the first legacy write (it must be durable when it returns, so a
crash in the legacy call leaves a trace), and :meth:`Recorder.closed` once the
outcome is known. Reads and refused requests are only closed.

Nothing here holds attribute values, tokens or passwords: only names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Outcome = Literal["pending", "success", "refused", "failed", "unknown"]


class Recorder(Protocol):
    async def opened(self, op: Operation) -> None:
        """Called once, before the first legacy write; durable when it returns."""

    async def closed(self, op: Operation) -> None:
        """Called once, when the outcome is known."""


class NullRecorder:
    async def opened(self, op: Operation) -> None:
        return None

    async def closed(self, op: Operation) -> None:
        return None


NULL_RECORDER: Recorder = NullRecorder()


@dataclass(slots=True, eq=False)
class Operation:
    app: str
    method: str
    #: The request path without its query string (it may hold an id, never a value).
    path: str
    remote: str | None = None
    user_agent: str | None = None
    #: The name of the credential that authenticated the caller; never the secret.
    client: str | None = None
    #: create, replace, patch, delete, get, list, search, bulk or discovery;
    #: "request" for one refused before it got that far (bad token, no such endpoint).
    action: str = "request"
    resource_type: str | None = None
    scim_id: str | None = None
    legacy_id: str | None = None
    #: userName or displayName, when the request or the result carries it.
    name: str | None = None
    #: Names of the attributes the operation writes (top level, sorted).
    changed: tuple[str, ...] = ()
    outcome: Outcome = "pending"
    status: int = 0
    scim_type: str | None = None
    #: For multi-step writes that stopped part-way: the step that failed.
    failed_step: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    bulk_id: str | None = None
    parent: Operation | None = None
    started: float = field(default_factory=time.time)
    duration_ms: float | None = None
    recorder: Recorder = NULL_RECORDER
    is_open: bool = False
    _t0: float = field(default_factory=time.perf_counter)
    #: Free-form extras a component adds (names only): e.g. {"breaker": "open"}.
    extra: dict[str, str] = field(default_factory=dict)
    #: Opt-in: the values written to ``changed``, kept only when the recorder asks for
    #: them (``wants_values``, the audit's ``values`` setting); it masks what is secret.
    values: dict[str, Any] | None = None

    def describe(
        self,
        action: str,
        resource_type: str | None = None,
        scim_id: str | None = None,
    ) -> None:
        self.action = action
        if resource_type is not None:
            self.resource_type = resource_type
        if scim_id is not None:
            self.scim_id = scim_id
            self.legacy_id = scim_id

    def name_from(self, resource: Mapping[str, Any]) -> None:
        """Take userName (users) or displayName (groups) from a request or result."""
        for key in ("userName", "displayName"):
            value = resource.get(key)
            if isinstance(value, str) and value:
                self.name = value
                return

    def set_changed(self, names: Iterable[str], values: Mapping[str, Any] | None = None) -> None:
        """The names written; with ``values`` (the resource as written), also their values
        if the recorder wants them."""
        self.changed = tuple(sorted(set(names)))
        if values is not None and getattr(self.recorder, "wants_values", False):
            self.values = {name: values.get(name) for name in self.changed}

    async def open(self) -> None:
        """Record the operation before its first legacy write (once)."""
        if not self.is_open:
            self.is_open = True
            await self.recorder.opened(self)

    def finish(self, status: int, scim_type: str | None = None) -> None:
        self.status = status
        self.scim_type = scim_type
        self.duration_ms = (time.perf_counter() - self._t0) * 1000.0
        if self.outcome != "pending":
            return  # set on purpose (e.g. "unknown" after a write timed out)
        if status < 400:
            self.outcome = "success"
        elif status < 500:
            self.outcome = "refused"
        else:
            self.outcome = "failed"

    async def close(self, status: int, scim_type: str | None = None) -> None:
        self.finish(status, scim_type)
        await self.recorder.closed(self)

    def child(self, bulk_id: str | None) -> Operation:
        """A bulk operation's own record, sharing the request's caller and trace."""
        return Operation(
            app=self.app,
            method=self.method,
            path=self.path,
            remote=self.remote,
            user_agent=self.user_agent,
            client=self.client,
            trace_id=self.trace_id,
            span_id=self.span_id,
            bulk_id=bulk_id,
            parent=self,
            recorder=self.recorder,
        )


_CURRENT: ContextVar[Operation | None] = ContextVar("scim_operation", default=None)


def current() -> Operation | None:
    """The operation this task works for, if any (None outside a request)."""
    return _CURRENT.get()


def bound(op: Operation) -> AbstractContextManager[Operation]:
    """``op`` as :func:`current` while inside (a plain object: once per request)."""
    return _Bound(op)


class _Bound:
    __slots__ = ("_op", "_token")

    def __init__(self, op: Operation) -> None:
        self._op = op

    def __enter__(self) -> Operation:
        self._token = _CURRENT.set(self._op)
        return self._op

    def __exit__(self, *exc: object) -> None:
        _CURRENT.reset(self._token)
