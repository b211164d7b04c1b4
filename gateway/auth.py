"""Inbound authentication: an app's credentials turn a request header into a principal.

Bearer tokens are stored as SHA-256 digests and compared in constant time;
Okta's header mode sends the token bare, without ``Bearer``, and is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from gateway.config import AuthConfig
from gateway.errors import Unauthorized


@dataclass(frozen=True, slots=True)
class Principal:
    app: str
    name: str  # the credential's name, for the audit; never the secret


class TokenAuthenticator:
    def __init__(self, app: str, config: AuthConfig) -> None:
        self._app = app
        self._tokens = [(cred.name, cred.digest()) for cred in config.tokens]

    def authenticate(self, header: str | None) -> Principal:
        if not header:
            raise Unauthorized("authentication required")
        scheme, _, rest = header.strip().partition(" ")
        token = rest.strip() if scheme.lower() == "bearer" else header.strip()
        digest = hashlib.sha256(token.encode()).digest()
        found: str | None = None
        # Compare against every token so timing does not tell which one matched.
        for name, expected in self._tokens:
            if hmac.compare_digest(digest, expected) and found is None:
                found = name
        if found is None:
            raise Unauthorized("invalid credentials")
        return Principal(self._app, found)
