"""Console logins: server-side sessions behind a random cookie, and CSRF tokens.

The cookie holds only a random id (32 bytes); the session (the operator's name,
role and CSRF token) stays in this process, keyed by the id's sha256 so the
table itself holds nothing a browser could replay. Sessions expire after
``session_minutes`` without use; the table is bounded (oldest dropped first).
With several worker processes a login holds in the process that made it only:
the admin token (an ``Authorization`` header) works in every one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

COOKIE = "scim_console"
#: The login form's own CSRF token (double submit: a cookie and a form field).
LOGIN_COOKIE = "scim_console_login"
MAX_SESSIONS = 1000


@dataclass(slots=True)
class Session:
    name: str
    read_only: bool
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    #: Bearer logins (an Authorization header) need no CSRF token: a browser never adds
    #: that header to a cross-site form post.
    by_header: bool = False
    expires: float = 0.0

    @property
    def role(self) -> str:
        return "operator (read-only)" if self.read_only else "admin"

    def csrf_ok(self, token: str | None) -> bool:
        return self.by_header or (
            token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())
        )


def _key(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Sessions:
    def __init__(self, lifetime_seconds: float) -> None:
        self.lifetime = lifetime_seconds
        self._table: OrderedDict[str, Session] = OrderedDict()

    def start(self, name: str, read_only: bool) -> tuple[str, Session]:
        """A new session and the cookie value that names it."""
        cookie = secrets.token_urlsafe(32)
        session = Session(name, read_only, expires=time.monotonic() + self.lifetime)
        self._table[_key(cookie)] = session
        while len(self._table) > MAX_SESSIONS:
            self._table.popitem(last=False)
        return cookie, session

    def get(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 100:
            return None
        key = _key(cookie)
        session = self._table.get(key)
        if session is None:
            return None
        now = time.monotonic()
        if session.expires < now:
            del self._table[key]
            return None
        session.expires = now + self.lifetime  # sliding: the lifetime counts from last use
        self._table.move_to_end(key)
        return session

    def end(self, cookie: str | None) -> None:
        if cookie:
            self._table.pop(_key(cookie), None)
