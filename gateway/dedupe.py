"""No duplicate accounts when a create's outcome is unknown.

A create that times out, or whose connection drops after it was sent, may
have been stored by the legacy app. The IdP retries it (and so might we);
if the app does not enforce uniqueness itself, a blind retry makes a second
account. So the service remembers such creates, by app, resource type and
unique name (userName for users, displayName for groups), in
:class:`UnknownCreates`, and the next create of that name first looks the
account up: found, it answers 409 ``uniqueness`` (RFC 7644 3.3), and the IdP
then finds it by filter and matches it (IDP-RULES.md). Apps that cannot
enforce uniqueness at all get that look-up before every create
(``check_unique_before_create``).

Names are kept as SHA-256 digests of their lower-cased form (both
attributes match without regard to case), so no store ever holds a value.
The memory store is bounded and forgets after ``ttl`` seconds; a shared one
(the state store) lets every replica know what another one could not confirm.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

from gateway.errors import ScimError, UpstreamError, UpstreamTimeout

Clock = Callable[[], float]


def name_key(app: str, resource_type: str, name: str) -> str:
    """The key of one unique name: app, type and a digest of the name, never the name."""
    digest = hashlib.sha256(name.lower().encode()).hexdigest()
    return f"{app}/{resource_type}/{digest}"


class UnknownCreates(Protocol):
    """Creates whose outcome is unknown, by :func:`name_key`."""

    async def remember(self, key: str) -> None: ...

    async def is_unknown(self, key: str) -> bool: ...

    async def forget(self, key: str) -> None: ...


class MemoryUnknownCreates:
    """An :class:`UnknownCreates` in this process: at most ``max_entries``, each ``ttl`` s."""

    def __init__(
        self, *, max_entries: int = 10_000, ttl: float = 86_400.0, clock: Clock = time.monotonic
    ) -> None:
        self._until: OrderedDict[str, float] = OrderedDict()
        self._max = max_entries
        self._ttl = ttl
        self._clock = clock

    async def remember(self, key: str) -> None:
        self._until[key] = self._clock() + self._ttl
        self._until.move_to_end(key)
        while len(self._until) > self._max:
            self._until.popitem(last=False)

    async def is_unknown(self, key: str) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if until <= self._clock():
            del self._until[key]
            return False
        return True

    async def forget(self, key: str) -> None:
        self._until.pop(key, None)


def outcome_unknown(exc: BaseException) -> bool:
    """Whether a failed write may still have happened (timeout, connection lost after sending)."""
    return isinstance(exc, UpstreamError) and exc.outcome_unknown


def unknown_create_error(exc: UpstreamError, resource_type: str) -> ScimError:
    """The answer to a create whose outcome is unknown: 504 after a timeout, else 502."""
    detail = (
        f"the outcome of the create is unknown: the {resource_type} may exist in the app "
        f"({exc.detail}); a retry looks for it before creating it"
    )
    error = UpstreamTimeout(detail) if isinstance(exc, UpstreamTimeout) else UpstreamError(detail)
    error.outcome_unknown = True
    return error


__all__ = [
    "MemoryUnknownCreates",
    "UnknownCreates",
    "name_key",
    "outcome_unknown",
    "unknown_create_error",
]
