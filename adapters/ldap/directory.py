"""ldap3 off the event loop: a few worker threads, each with its own bound connection.

ldap3 is synchronous. :class:`Directory` runs each unit of work (a function of
one :class:`ldap3.Connection`) on one of ``pool_size`` threads; a thread opens its
connection (StartTLS or LDAPS as configured, then a simple bind) the first time it
needs one and keeps it. A connection that failed (the server restarted, a socket
timed out) is closed and forgotten, so the next unit of work on that thread opens a
fresh one. Errors are translated by the caller, with :func:`.errors.map_ldap_errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar
from urllib.parse import urlsplit

import ldap3

from adapters.ldap.config import LdapSettings
from adapters.ldap.errors import CONNECTION_ERRORS

__all__ = ["Directory", "describe_url"]

T = TypeVar("T")


def describe_url(url: str) -> str:
    """``host:port`` of the directory, for messages."""
    parts = urlsplit(url)
    port = parts.port or (636 if parts.scheme == "ldaps" else 389)
    return f"{parts.hostname}:{port}"


class Directory:
    def __init__(self, settings: LdapSettings, name: str) -> None:
        self.settings = settings
        url = settings.url.rstrip("/")
        tls = _Tls(settings.tls.ca_file, settings.tls.verify, urlsplit(url).hostname or "")
        self.server = ldap3.Server(
            url,
            use_ssl=url.startswith("ldaps:"),
            tls=tls,
            get_info=ldap3.NONE,
            connect_timeout=settings.connect_timeout,
        )
        self._executor = ThreadPoolExecutor(settings.pool_size, thread_name_prefix=f"ldap-{name}")
        self._local = threading.local()
        self._open: set[ldap3.Connection] = set()
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, work: Callable[[ldap3.Connection], T]) -> T:
        """``work(connection)`` on a worker thread; its exceptions are raised here."""
        if self._closed:
            raise RuntimeError("the directory connections are closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._work, work)

    def _work(self, work: Callable[[ldap3.Connection], T]) -> T:
        conn = self._connection()
        try:
            return work(conn)
        except CONNECTION_ERRORS:
            self._forget(conn)
            raise

    def _connection(self) -> ldap3.Connection:
        conn: ldap3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed:
            return conn
        settings = self.settings
        conn = ldap3.Connection(
            self.server,
            user=settings.bind_dn.get_secret_value(),
            password=settings.password.get_secret_value(),
            client_strategy=ldap3.SYNC,
            raise_exceptions=True,
            receive_timeout=int(max(1, settings.timeout)),
            check_names=False,
            read_only=False,
        )
        try:
            conn.open()
            if settings.start_tls:
                conn.start_tls()
            conn.bind()
        except BaseException:
            _discard(conn)
            raise
        self._local.conn = conn
        with self._lock:
            self._open.add(conn)
        return conn

    def _forget(self, conn: ldap3.Connection) -> None:
        self._local.conn = None
        with self._lock:
            self._open.discard(conn)
        _discard(conn)

    async def aclose(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.unbind()
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)


class _Tls(ldap3.Tls):
    """ldap3's TLS settings, but the handshake is Python's default client context's.

    ldap3 checks the host name itself after the handshake, with the deprecated
    ``ssl.match_hostname``, and drops the wrapped socket unclosed when that fails.
    Here the context checks the certificate and the host name (SNI) during the
    handshake, and a failed handshake closes its socket.
    """

    def __init__(self, ca_file: str | None, verify: bool, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
        self.context = ssl.create_default_context(cafile=ca_file)
        if not verify:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE
        self.host = host

    def wrap_socket(self, connection: ldap3.Connection, do_handshake: bool = False) -> None:
        connection.socket = self.context.wrap_socket(
            connection.socket, server_hostname=self.host, do_handshake_on_connect=do_handshake
        )


def _discard(conn: ldap3.Connection) -> None:
    """Unbind and close; ldap3 leaves the socket of a refused connect open."""
    with contextlib.suppress(Exception):
        conn.unbind()
    sock = getattr(conn, "socket", None)
    if sock is not None:
        with contextlib.suppress(Exception):
            sock.close()
