"""A JWT issuer on loopback: RSA keys made with cryptography, its JWKS served by aiohttp.

Tests sign tokens with :meth:`Issuer.token` and count how often the gateway
fetched the key set (``fetches``); :meth:`Issuer.rotate` publishes a new key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

ISSUER = "https://issuer.test/tenant-1/"


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


@dataclass
class Issuer:
    keys: dict[str, rsa.RSAPrivateKey] = field(default_factory=dict)
    published: list[str] = field(default_factory=list)
    fetches: int = 0
    url: str = ""

    def add_key(self, kid: str, *, publish: bool = True) -> None:
        self.keys[kid] = new_key()
        if publish:
            self.published.append(kid)

    def rotate(self, kid: str) -> None:
        """Publish ``kid`` (a new key) instead of the old ones."""
        self.add_key(kid, publish=False)
        self.published = [kid]

    def token(self, kid: str = "k1", *, alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": "crm", "iat": now, "nbf": now, "exp": now + 600, **claims}
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": kid})

    async def jwks(self, request: web.Request) -> web.Response:
        self.fetches += 1
        keys = [public_jwk(self.keys[kid], kid) for kid in self.published]
        return web.json_response({"keys": keys})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/keys", self.jwks)
        return app


def jwt_credential(issuer: Issuer, name: str, audience: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "issuer": ISSUER, "audience": audience, "jwks_url": issuer.url, **extra}
