"""The mass-deprovisioning guard: a runaway IdP must not empty a legacy app.

A misconfigured scope or a broken sync rule can make an IdP delete or
deactivate every account it manages, and it will do so at full speed. Per
app, the guard lets ``max_deprovisions`` deletes and deactivations (``active``
going from true to false through PATCH or PUT) pass per ``window_seconds``;
further ones are held: answered 503 with ``Retry-After``, recorded on the
operation (``op.extra["guard"] = "held"``, outcome ``refused``), and never
sent to the legacy app. IdPs retry 503s (IDP-RULES.md), so once an operator
has looked and released the app (``scim-gateway guard release``, or
``POST /admin/guard/{app}/release``), the held operations pass on their next
retry: each held one once, and, when the release names minutes, every
deprovisioning until then.

Holds and releases must be shared by replicas and survive restarts, so they
live behind :class:`GuardStore`; :class:`MemoryGuardStore` is the one-process
implementation. A store decides :meth:`GuardStore.admit` atomically (count,
compare, record), so two replicas never both let the 51st delete through.

Held operations are named by action, resource type and id (``delete
User/42``): never a value.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from gateway.config import GuardConfig
from gateway.errors import ScimError
from gateway.operation import Operation

Verdict = Literal["passed", "released", "held"]
Clock = Callable[[], float]

#: Held (and released, not yet retried) operations remembered per app; the oldest go first.
MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class GuardState:
    """What an operator sees: recent deprovisionings, what is held, what is released."""

    app: str
    recent: int
    held: tuple[str, ...]
    released: tuple[str, ...]
    #: Until when (epoch seconds) every deprovisioning passes; None: no open release.
    open_until: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "app": self.app,
            "recent": self.recent,
            "held": list(self.held),
            "released": list(self.released),
            "open_until": self.open_until,
        }


class GuardStore(Protocol):
    """Where holds and releases live; shared by every replica of the gateway.

    Times are epoch seconds given by the caller (the guard's clock), so a
    store needs no clock of its own and tests need no sleeping.
    """

    async def admit(self, app: str, key: str, *, now: float, window: float, limit: int) -> Verdict:
        """Decide one deprovisioning, atomically.

        ``released`` when ``key`` was released (it is then used up) or the app
        has an open release; ``passed`` when fewer than ``limit`` passed in the
        last ``window`` seconds; else ``held`` (and ``key`` is recorded as held).
        Passed and released ones count toward the window.
        """

    async def release(self, app: str, *, until: float | None) -> None:
        """Release every held ``key`` of ``app`` (each passes once); with ``until``,
        let every deprovisioning pass until then."""

    async def state(self, app: str, *, now: float, window: float) -> GuardState: ...


@dataclass(slots=True)
class _AppState:
    passed: deque[float] = field(default_factory=deque)
    held: OrderedDict[str, float] = field(default_factory=OrderedDict)
    released: OrderedDict[str, float] = field(default_factory=OrderedDict)
    open_until: float | None = None

    def prune(self, now: float, window: float) -> None:
        while self.passed and self.passed[0] <= now - window:
            self.passed.popleft()
        if self.open_until is not None and self.open_until <= now:
            self.open_until = None


def _remember(keys: OrderedDict[str, float], key: str, now: float) -> None:
    keys[key] = now
    keys.move_to_end(key)
    while len(keys) > MAX_KEYS:
        keys.popitem(last=False)


class MemoryGuardStore:
    """A :class:`GuardStore` in this process's memory: one replica, lost on restart."""

    def __init__(self) -> None:
        self._apps: dict[str, _AppState] = {}

    def _app(self, app: str) -> _AppState:
        return self._apps.setdefault(app, _AppState())

    async def admit(self, app: str, key: str, *, now: float, window: float, limit: int) -> Verdict:
        state = self._app(app)
        state.prune(now, window)
        verdict: Verdict
        if state.open_until is not None or state.released.pop(key, None) is not None:
            verdict = "released"
        elif len(state.passed) < limit:
            verdict = "passed"
        else:
            _remember(state.held, key, now)
            return "held"
        state.passed.append(now)
        return verdict

    async def release(self, app: str, *, until: float | None) -> None:
        state = self._app(app)
        for key, moment in state.held.items():
            _remember(state.released, key, moment)
        state.held.clear()
        if until is not None:
            state.open_until = until

    async def state(self, app: str, *, now: float, window: float) -> GuardState:
        state = self._app(app)
        state.prune(now, window)
        return GuardState(
            app,
            len(state.passed),
            tuple(state.held),
            tuple(state.released),
            state.open_until,
        )


class DeprovisionHeld(ScimError):
    """503: the guard holds this delete or deactivation until an operator releases it."""

    status = 503

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class Guard:
    """One app's guard: its config, the shared store and a clock."""

    def __init__(
        self, app: str, config: GuardConfig, store: GuardStore, clock: Clock = time.time
    ) -> None:
        self.app = app
        self.config = config
        self.store = store
        self.clock = clock

    async def check(self, op: Operation, action: str, resource_type: str, id: str) -> None:
        """Let one deprovisioning pass, or raise :class:`DeprovisionHeld` (recorded on ``op``)."""
        config = self.config
        key = f"{action} {resource_type}/{id}"
        verdict = await self.store.admit(
            self.app,
            key,
            now=self.clock(),
            window=config.window_seconds,
            limit=config.max_deprovisions,
        )
        if verdict == "passed":
            return
        op.extra["guard"] = verdict
        if verdict == "released":
            return
        op.outcome = "refused"
        raise DeprovisionHeld(
            f"held by the deprovisioning guard: more than {config.max_deprovisions} deletes "
            f"and deactivations in {config.window_seconds:g} s for this app; nothing was "
            "sent to the app, and an operator must release it before a retry passes",
            retry_after=config.retry_after,
        )

    async def release(self, minutes: float | None = None) -> GuardState:
        until = None if minutes is None else self.clock() + minutes * 60.0
        await self.store.release(self.app, until=until)
        return await self.status()

    async def status(self) -> GuardState:
        return await self.store.state(self.app, now=self.clock(), window=self.config.window_seconds)


__all__ = [
    "DeprovisionHeld",
    "Guard",
    "GuardState",
    "GuardStore",
    "MemoryGuardStore",
    "Verdict",
]
