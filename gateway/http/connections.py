"""Connection limits: a header read timeout, and caps on open connections in all and per peer.

Slow-header clients (slowloris) hold a connection, and a file descriptor, for as
long as they trickle bytes; with enough of them the process runs out of
descriptors and every legitimate request times out. So, per process:

* a connection must deliver its first request's headers within ``header_timeout``
  seconds, or it is closed (later requests on it are bounded by aiohttp's
  keep-alive timeout and by the caps);
* beyond ``max_connections`` open connections, or ``max_connections_per_peer``
  from one address, a new connection is closed as soon as it is accepted;
* refusals are logged at most once per ``LOG_EVERY`` seconds, with a count, so
  an attack does not fill the disk with log lines.

:func:`guard_connections` installs this on an app before it is served (one call
per process: each worker of ``serve --workers`` counts its own connections). It
hooks the aiohttp ``Server`` the app's runner makes: its ``connection_made`` and
``connection_lost`` (called by every connection) and its request handler (called
once a request's headers are in). Nothing runs per request beyond cancelling one
timer on a connection's first request.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.config import ServerConfig

log = logging.getLogger("gateway.connections")

#: Seconds between two log lines about refused connections.
LOG_EVERY = 10.0
#: Descriptors kept free beyond max_connections (the state store, legacy calls, logs).
SPARE_FILES = 256

Made = Callable[[RequestHandler, asyncio.Transport], None]
Lost = Callable[[RequestHandler, BaseException | None], None]


def _peer(transport: asyncio.BaseTransport) -> str:
    name = transport.get_extra_info("peername")
    return str(name[0]) if isinstance(name, tuple) and name else "unix"


class ConnectionGuard:
    """Counts open connections in all and per peer; refuses over the caps; times headers."""

    def __init__(
        self,
        *,
        header_timeout: float,
        max_connections: int,
        max_per_peer: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.max_per_peer = max_per_peer
        self.open: dict[str, int] = {}
        self.total = 0
        self._clock = clock
        self._peers: dict[RequestHandler, str] = {}
        self._timers: dict[RequestHandler, asyncio.TimerHandle] = {}
        self._refused: dict[str, int] = {}
        self._logged = float("-inf")

    def admit(self, peer: str) -> bool:
        if self.total >= self.max_connections:
            self._refuse("max_connections")
            return False
        if self.open.get(peer, 0) >= self.max_per_peer:
            self._refuse("max_connections_per_peer")
            return False
        self.total += 1
        self.open[peer] = self.open.get(peer, 0) + 1
        return True

    def release(self, peer: str) -> None:
        self.total -= 1
        left = self.open[peer] - 1
        if left:
            self.open[peer] = left
        else:
            del self.open[peer]

    def _refuse(self, why: str) -> None:
        self._refused[why] = self._refused.get(why, 0) + 1
        now = self._clock()
        if now - self._logged >= LOG_EVERY:
            self._logged = now
            counts = ", ".join(f"{n} over {k}" for k, n in sorted(self._refused.items()))
            log.warning("connections refused in the last %.0f s: %s", LOG_EVERY, counts)
            self._refused.clear()

    def _too_slow(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        self._timers.pop(handler, None)
        self._refuse("header_timeout")
        transport.abort()

    # -- the hooks on aiohttp's Server ---------------------------------------------------

    def install(self, server: web.Server) -> None:
        made: Made = server.connection_made
        lost: Lost = server.connection_lost
        handle = server.request_handler

        def connection_made(handler: RequestHandler, transport: asyncio.Transport) -> None:
            made(handler, transport)
            peer = _peer(transport)
            if not self.admit(peer):
                transport.abort()  # connection_lost follows; this one was never counted
                return
            self._peers[handler] = peer
            loop = asyncio.get_running_loop()
            timer = loop.call_later(self.header_timeout, self._too_slow, handler, transport)
            self._timers[handler] = timer

        def connection_lost(handler: RequestHandler, exc: BaseException | None = None) -> None:
            timer = self._timers.pop(handler, None)
            if timer is not None:
                timer.cancel()
            peer = self._peers.pop(handler, None)
            if peer is not None:
                self.release(peer)
            lost(handler, exc)

        async def request_handler(request: web.BaseRequest) -> web.StreamResponse:
            if self._timers:  # only while some connection waits for its first headers
                timer = self._timers.pop(request.protocol, None)
                if timer is not None:
                    timer.cancel()
            return await handle(request)

        # Instance attributes: aiohttp looks these up on the server at every connection.
        server.connection_made = connection_made  # type: ignore[method-assign]
        server.connection_lost = connection_lost  # type: ignore[method-assign]
        server.request_handler = request_handler


def _enough_files(wanted: int) -> None:
    """Raise the soft open-files limit toward the hard one, so the caps bind first."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def guard_connections(app: web.Application, config: ServerConfig) -> ConnectionGuard:
    """Apply ``config``'s connection limits to ``app`` when it is served (in this process)."""
    guard = ConnectionGuard(
        header_timeout=config.header_timeout,
        max_connections=config.max_connections,
        max_per_peer=config.max_connections_per_peer,
    )
    make: Callable[..., web.Server] = app._make_handler

    def make_handler(**kwargs: Any) -> web.Server:
        server = make(**kwargs)
        guard.install(server)
        return server

    # The runner asks the app for its Server; there is no public hook between the two.
    object.__setattr__(app, "_make_handler", make_handler)
    _enough_files(config.max_connections + SPARE_FILES)
    return guard


__all__ = ["ConnectionGuard", "guard_connections"]
