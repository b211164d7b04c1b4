"""JWT bearer tokens checked against an issuer's published keys (a JWKS).

PyJWT does the JWS work (signature, ``exp``/``nbf`` with leeway, ``iss``,
``aud``); this module adds what it leaves to the caller: which algorithms an
app accepts (asymmetric only, so neither ``none`` nor an HS* token signed
with a public key can pass), and the key set itself, fetched over aiohttp and
cached for ``jwks_cache_ttl``. Issuers rotate keys, so a token whose ``kid``
is unknown refetches the set early, but at most once per
``jwks_refresh_interval`` (and a failed fetch is not retried sooner either):
tokens with made-up ``kid`` values cannot make the gateway hammer the issuer.

Every refusal is a :class:`TokenRejected` whose message says what was wrong
with the token, never what the token is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import orjson

from gateway.config import JwtCredential
from gateway.errors import UpstreamUnavailable

log = logging.getLogger("gateway.auth")

Clock = Callable[[], float]
JWKS_MAX_BYTES = 1_048_576


class TokenRejected(Exception):
    """The token is not acceptable; the message is safe to show the caller."""


class KeySet:
    """An issuer's signing keys by ``kid``, fetched at first use and after ``ttl`` seconds."""

    def __init__(
        self,
        url: str,
        *,
        ttl: float,
        refresh_interval: float,
        clock: Clock = time.monotonic,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self._ttl = ttl
        self._refresh_interval = refresh_interval
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float | None = None  # the last good answer
        self._kid_fetched_at: float | None = None  # the last early fetch, for an unknown kid
        self._failed_at: float | None = None  # the last failed fetch, if the latest failed
        self._lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    async def key(self, kid: str | None) -> dict[str, Any]:
        """The JWK for ``kid`` (or the only key, for a token without one)."""
        if self._due(kid):
            async with self._lock:
                if self._due(kid):  # another task may have fetched meanwhile
                    await self._refresh()
        if not self._keys and self._failed_at is not None:
            retry = max(1, round(self._refresh_interval))
            raise UpstreamUnavailable(
                "the token issuer's signing keys cannot be fetched", retry_after=retry
            )
        found = self._find(kid)
        if found is None:
            raise TokenRejected("the token's signing key is unknown")
        return found

    def _due(self, kid: str | None) -> bool:
        now = self._clock()
        if self._failed_at is not None and now - self._failed_at < self._refresh_interval:
            return False
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            return True
        return self._find(kid) is None and (
            self._kid_fetched_at is None or now - self._kid_fetched_at >= self._refresh_interval
        )

    def _find(self, kid: str | None) -> dict[str, Any] | None:
        if kid is None:
            return next(iter(self._keys.values())) if len(self._keys) == 1 else None
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        now = self._clock()
        if self._fetched_at is not None and now - self._fetched_at < self._ttl:
            self._kid_fetched_at = now  # early, for an unknown kid: rate-limited
        try:
            keys = await self._fetch()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._failed_at = now
            # The URL is configuration, not a secret; the cause's type says enough.
            log.warning("cannot fetch the JWKS at %s: %s", self.url, type(exc).__name__)
            return  # keep the keys we have, if any, until the issuer answers again
        self._keys, self._fetched_at, self._failed_at = keys, now, None

    async def _fetch(self) -> dict[str, dict[str, Any]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(self.url, allow_redirects=False) as resp:
            if resp.status != 200:
                raise ValueError(f"status {resp.status}")
            raw = bytearray()
            async for chunk in resp.content.iter_chunked(65536):
                raw += chunk
                if len(raw) > JWKS_MAX_BYTES:
                    raise ValueError("the key set is too large")
        body = orjson.loads(raw)  # JSONDecodeError is a ValueError
        if not isinstance(body, dict) or not isinstance(body.get("keys"), list):
            raise ValueError("not a JWK set")
        return {
            key["kid"]: key
            for key in body["keys"]
            if isinstance(key, dict) and isinstance(key.get("kid"), str) and key.get("use") != "enc"
        }

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class JwtVerifier:
    """Checks tokens for one configured JWT credential; :meth:`verify` returns the claims."""

    def __init__(self, credential: JwtCredential, keys: KeySet) -> None:
        self.credential = credential
        self._keys = keys

    async def verify(self, token: str) -> dict[str, Any]:
        cred = self.credential
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise TokenRejected("the token is not a well-formed JWT") from None
        alg = header.get("alg")
        if alg not in cred.algorithms:
            raise TokenRejected("the token's signing algorithm is not allowed")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenRejected("the token's key id is not a string")
        jwk = await self._keys.key(kid)
        if jwk.get("alg") not in (None, alg):
            raise TokenRejected("the token's algorithm does not match its signing key")
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            raise TokenRejected("the token's algorithm does not match its signing key") from None
        claims = self._decode(token, key, alg)
        for name, value in cred.required_claims.items():
            if claims.get(name) != value:
                raise TokenRejected(f"the token's {name} claim is not the expected one")
        return claims

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        cred = self.credential
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=cred.audience,
                issuer=cred.issuer,
                leeway=cred.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRejected("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenRejected("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise TokenRejected("the token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise TokenRejected("the token is from another issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenRejected(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidTokenError:
            raise TokenRejected("the token's signature or claims are not valid") from None
        return claims


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` a token claims, to pick the credential that checks it; trusted for nothing."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2
