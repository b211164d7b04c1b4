"""Inbound authentication: an app's credentials turn a request header into a principal.

An app may hold several credentials at once (for rotation), of three kinds:

* bearer tokens, stored as SHA-256 digests and compared in constant time;
  Okta's header mode sends the token bare, without ``Bearer``, and is accepted;
* HTTP Basic, a username and a password digest, also compared in constant time;
* JWT bearer tokens from an issuer, checked against its key set (gateway/jwks.py).

Each has a name, which goes to the audit as the client, and may be read-only.
A refusal is a 401 naming what was wrong; neither it nor the log ever carries
the token or password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass

from gateway.config import AuthConfig
from gateway.errors import Unauthorized
from gateway.jwks import Clock, JwtVerifier, KeySet, TokenRejected, looks_like_jwt
from gateway.jwks import unverified_issuer as _issuer

log = logging.getLogger("gateway.auth")


@dataclass(frozen=True, slots=True)
class Principal:
    app: str
    name: str  # the credential's name, for the audit; never the secret
    read_only: bool = False


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


class Authenticator:
    """One app's credentials; :meth:`authenticate` takes the ``Authorization`` header."""

    def __init__(self, app: str, config: AuthConfig, *, clock: Clock = time.monotonic) -> None:
        self._app = app
        self._tokens = [
            (cred.digest(), Principal(app, cred.name, cred.read_only)) for cred in config.tokens
        ]
        self._basic = [
            (_sha256(cred.username), cred.digest(), Principal(app, cred.name, cred.read_only))
            for cred in config.basic
        ]
        key_sets: dict[str, KeySet] = {}
        self._jwt: list[JwtVerifier] = []
        for cred in config.jwt:
            assert cred.jwks_url is not None  # the config fills it in or refuses
            keys = key_sets.setdefault(
                cred.jwks_url,
                KeySet(
                    cred.jwks_url,
                    ttl=cred.jwks_cache_ttl,
                    refresh_interval=cred.jwks_refresh_interval,
                    clock=clock,
                ),
            )
            self._jwt.append(JwtVerifier(cred, keys))
        self.key_sets = list(key_sets.values())
        self._schemes = ("Bearer", "Basic") if self._basic else ("Bearer",)

    async def authenticate(self, header: str | None) -> Principal:
        if not header or not header.strip():
            raise Unauthorized("authentication required", schemes=self._schemes)
        if not header.isascii():
            # Bearer tokens and Basic's base64 are ASCII (RFC 6750, 7617). Other bytes
            # arrive as lone surrogates, which no hash or comparison takes: refuse them.
            raise self._refuse("the Authorization header holds bytes that are not ASCII")
        scheme, _, rest = header.strip().partition(" ")
        if scheme.lower() == "basic":
            return self._check_basic(rest.strip())
        token = rest.strip() if scheme.lower() == "bearer" else header.strip()
        found = self._check_token(token)
        if found is not None:
            return found
        if self._jwt and looks_like_jwt(token):
            return await self._check_jwt(token)
        raise self._refuse("invalid credentials")

    def _check_token(self, token: str) -> Principal | None:
        digest = _sha256(token)
        found: Principal | None = None
        # Compare against every token so timing does not tell which one matched.
        for expected, principal in self._tokens:
            if hmac.compare_digest(digest, expected) and found is None:
                found = principal
        return found

    def _check_basic(self, encoded: str) -> Principal:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise self._refuse("malformed Basic credentials") from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise self._refuse("malformed Basic credentials")
        user_digest, password_digest = _sha256(username), _sha256(password)
        found: Principal | None = None
        for expected_user, expected_password, principal in self._basic:
            # Both compared, always: timing tells neither which user nor which half failed.
            same_user = hmac.compare_digest(user_digest, expected_user)
            same_password = hmac.compare_digest(password_digest, expected_password)
            if same_user & same_password and found is None:
                found = principal
        if found is None:
            raise self._refuse("invalid credentials")
        return found

    async def _check_jwt(self, token: str) -> Principal:
        issuer = _issuer(token)
        verifiers = [v for v in self._jwt if v.credential.issuer == issuer]
        if not verifiers:
            raise self._refuse("the token is from another issuer")
        reason = ""
        for verifier in verifiers:
            try:
                await verifier.verify(token)
            except TokenRejected as exc:
                reason = str(exc)
                continue
            cred = verifier.credential
            return Principal(self._app, cred.name, cred.read_only)
        raise self._refuse(reason)

    def _refuse(self, reason: str) -> Unauthorized:
        log.info("app %s: credentials refused: %s", self._app, reason)
        return Unauthorized(reason, error="invalid_token", schemes=self._schemes)

    async def aclose(self) -> None:
        for keys in self.key_sets:
            await keys.aclose()


def is_write(method: str, path: list[str]) -> bool:
    """Whether a request below ``/scim/v2`` may change data (a read-only credential's 403).

    ``POST .../.search`` only reads; every other POST, PUT, PATCH and DELETE
    (``/Bulk`` included) may write.
    """
    if method in ("GET", "HEAD", "OPTIONS"):
        return False
    return not (method == "POST" and bool(path) and path[-1].lower() == ".search")
