"""How the adapter proves itself to the legacy app: none, API key, bearer, basic, OAuth 2.0.

Each scheme gives the headers to send in two forms: :meth:`Auth.masked` for
a dry run (values ``****``, no network) and :meth:`Auth.headers` for real
(an OAuth 2.0 token is fetched once, cached until shortly before it expires,
and fetched again after :meth:`Auth.invalidate`, which the adapter calls
when the app answers 401).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import aiohttp
import orjson
from yarl import URL

from adapters.rest.config import (
    ApiKeyAuth,
    AuthSettings,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2Auth,
)
from adapters.rest.errors import Redactor, malformed, transport_errors
from gateway.sdk import UpstreamError

MASK = "****"


class Auth:
    """No authentication; the base of the others."""

    #: Whether a 401 may be cured by fetching a new credential.
    renewable = False

    def masked(self) -> dict[str, str]:
        return {}

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        return {}

    def invalidate(self) -> None:
        """Forget a cached credential."""


class StaticAuth(Auth):
    """One header with a fixed value: ``<scheme> <secret>``, or the bare secret."""

    def __init__(self, header: str, scheme: str, secret: str) -> None:
        self._header = header
        self._prefix = f"{scheme} " if scheme else ""
        self._value = self._prefix + secret

    def masked(self) -> dict[str, str]:
        return {self._header: self._prefix + MASK}

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        return {self._header: self._value}


class OAuth2ClientCredentials(Auth):
    renewable = True

    def __init__(
        self,
        settings: OAuth2Auth,
        timeout: aiohttp.ClientTimeout,
        retry_after: int,
        redact: Redactor,
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._retry_after = retry_after
        self._redact = redact
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        #: Seconds, monotonic; tests replace it to make a token expire.
        self.clock: Callable[[], float] = time.monotonic

    def masked(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {MASK}"}

    async def headers(self, session: aiohttp.ClientSession) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token(session)}"}

    def invalidate(self) -> None:
        self._token = None

    async def token(self, session: aiohttp.ClientSession) -> str:
        async with self._lock:  # concurrent calls share one token request
            if self._token is None or self.clock() >= self._expires:
                token, lifetime = await self._fetch(session)
                self._redact.add(token)
                margin = min(self._settings.expiry_margin, lifetime / 2)
                self._token, self._expires = token, self.clock() + lifetime - margin
            return self._token

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        s = self._settings
        form = {"grant_type": "client_credentials", **s.params}
        if s.scope:
            form["scope"] = s.scope
        secret = s.client_secret.get_secret_value()
        headers = {"Accept": "application/json"}
        if s.client_auth == "basic":
            # RFC 6749 2.3.1: both parts form-encoded, then HTTP Basic.
            pair = basic_credentials(quote_plus(s.client_id), quote_plus(secret))
            self._redact.add(pair)
            headers["Authorization"] = f"Basic {pair}"
        else:
            form |= {"client_id": s.client_id, "client_secret": secret}
        label = "the token request"
        where = host_port(s.token_url)
        with transport_errors(label, where, self._retry_after):
            async with session.post(
                s.token_url,
                data=form,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as resp:
                status, body = resp.status, await resp.read()
        if status in (400, 401, 403):
            raise UpstreamError(
                f"the app's token endpoint at {where} refused the client credentials ({status})"
            )
        if status >= 300:
            raise UpstreamError(f"the app's token endpoint at {where} failed (HTTP {status})")
        return self._parse(body, label)

    def _parse(self, body: bytes, label: str) -> tuple[str, float]:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise malformed(label, "not JSON") from None
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise malformed(label, "no access_token")
        lifetime = data.get("expires_in", 3600)
        if isinstance(lifetime, str) and lifetime.isdigit():
            lifetime = int(lifetime)
        if not isinstance(lifetime, int | float) or isinstance(lifetime, bool) or lifetime <= 0:
            lifetime = 3600
        return token, float(lifetime)


def basic_credentials(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def host_port(url: str) -> str:
    """``host:port`` of a URL: what messages may say about where the app is."""
    parsed = URL(url)
    return f"{parsed.host}:{parsed.port}"


def build_auth(
    settings: AuthSettings, timeout: aiohttp.ClientTimeout, retry_after: int, redact: Redactor
) -> Auth:
    """The scheme for ``settings``; its secrets are registered with ``redact``."""
    if isinstance(settings, NoAuth):
        return Auth()
    if isinstance(settings, ApiKeyAuth):
        key = settings.key.get_secret_value()
        redact.add(key)
        return StaticAuth(settings.header, "", key)
    if isinstance(settings, BearerAuth):
        token = settings.token.get_secret_value()
        redact.add(token)
        return StaticAuth("Authorization", "Bearer", token)
    if isinstance(settings, BasicAuth):
        password = settings.password.get_secret_value()
        pair = basic_credentials(settings.username, password)
        redact.add(password)
        redact.add(pair)
        return StaticAuth("Authorization", "Basic", pair)
    redact.add(settings.client_secret.get_secret_value())
    return OAuth2ClientCredentials(settings, timeout, retry_after, redact)
