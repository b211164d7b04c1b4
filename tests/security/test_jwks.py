"""The issuer's key set: fetched once, cached, refetched on rotation but never hammered.

A fake clock drives the cache (no sleeping, no timing asserts); the key set
itself comes over HTTP from the issuer on loopback, which counts its fetches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from jwt_issuer import Issuer, jwt_credential
from rest_support import closed_port

from gateway.auth import Authenticator
from gateway.config import AuthConfig
from gateway.errors import Unauthorized, UpstreamUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def auth(issuer: Issuer, clock: Clock) -> AsyncIterator[Authenticator]:
    config = AuthConfig.model_validate(
        {
            "jwt": [
                jwt_credential(issuer, "idp", "crm", jwks_cache_ttl=600, jwks_refresh_interval=60)
            ]
        }
    )
    found = Authenticator("crm", config, clock=clock)
    yield found
    await found.aclose()


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def test_the_key_set_is_fetched_once_for_many_tokens(
    auth: Authenticator, issuer: Issuer
) -> None:
    for _ in range(5):
        principal = await auth.authenticate(bearer(issuer.token()))
        assert principal.name == "idp"
    assert issuer.fetches == 1


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    auth: Authenticator, issuer: Issuer
) -> None:
    await auth.authenticate(bearer(issuer.token("k1")))
    issuer.rotate("k2")
    principal = await auth.authenticate(bearer(issuer.token("k2")))
    assert principal.name == "idp"
    assert issuer.fetches == 2


async def test_unknown_kids_refetch_at_most_once_per_refresh_interval(
    auth: Authenticator, issuer: Issuer, clock: Clock
) -> None:
    await auth.authenticate(bearer(issuer.token("k1")))
    issuer.add_key("unpublished", publish=False)
    for _ in range(10):
        with pytest.raises(Unauthorized, match="signing key is unknown"):
            await auth.authenticate(bearer(issuer.token("unpublished")))
    assert issuer.fetches == 2  # the set, then once more for the unknown kid
    clock.now += 61
    for _ in range(10):
        with pytest.raises(Unauthorized, match="signing key is unknown"):
            await auth.authenticate(bearer(issuer.token("unpublished")))
    assert issuer.fetches == 3


async def test_the_key_set_is_fetched_again_after_its_ttl(
    auth: Authenticator, issuer: Issuer, clock: Clock
) -> None:
    await auth.authenticate(bearer(issuer.token()))
    clock.now += 599
    await auth.authenticate(bearer(issuer.token()))
    assert issuer.fetches == 1
    clock.now += 2
    await auth.authenticate(bearer(issuer.token()))
    assert issuer.fetches == 2


async def test_a_key_removed_from_the_set_stops_working_after_a_refetch(
    auth: Authenticator, issuer: Issuer, clock: Clock
) -> None:
    await auth.authenticate(bearer(issuer.token("k1")))
    issuer.rotate("k2")
    clock.now += 601
    with pytest.raises(Unauthorized, match="signing key is unknown"):
        await auth.authenticate(bearer(issuer.token("k1")))


async def test_an_unreachable_issuer_is_503_for_everyone_and_not_retried_at_once(
    issuer: Issuer, clock: Clock
) -> None:
    down = {
        **jwt_credential(issuer, "idp", "crm"),
        "jwks_url": f"http://127.0.0.1:{closed_port()}/keys",
    }
    auth = Authenticator("crm", AuthConfig.model_validate({"jwt": [down]}), clock=clock)
    try:
        results = await asyncio.gather(
            *(auth.authenticate(bearer(issuer.token())) for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, UpstreamUnavailable) for r in results), results
        assert {
            r.headers["Retry-After"] for r in results if isinstance(r, UpstreamUnavailable)
        } == {"60"}
    finally:
        await auth.aclose()


@pytest.mark.parametrize("answer", ["not json", '{"keys": "nope"}', "x" * 1_100_000])
async def test_a_broken_key_set_counts_as_unreachable(
    aiohttp_server: Any, issuer: Issuer, clock: Clock, answer: str
) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.Response(text=answer, content_type="application/json")

    app = web.Application()
    app.router.add_get("/keys", broken)
    server = await aiohttp_server(app)
    cred = {**jwt_credential(issuer, "idp", "crm"), "jwks_url": str(server.make_url("/keys"))}
    auth = Authenticator("crm", AuthConfig.model_validate({"jwt": [cred]}), clock=clock)
    try:
        with pytest.raises(UpstreamUnavailable):
            await auth.authenticate(bearer(issuer.token()))
    finally:
        await auth.aclose()


async def test_cached_keys_are_used_while_the_issuer_is_down(
    auth: Authenticator, issuer: Issuer, clock: Clock
) -> None:
    await auth.authenticate(bearer(issuer.token()))
    keys = auth.key_sets[0]
    keys.url = f"http://127.0.0.1:{closed_port()}/keys"  # the issuer goes away
    clock.now += 601  # the cache is stale: a refetch is tried and fails
    principal = await auth.authenticate(bearer(issuer.token()))
    assert principal.name == "idp"


async def test_one_key_set_serves_the_credentials_that_share_it(
    issuer: Issuer, clock: Clock
) -> None:
    creds = [jwt_credential(issuer, "a", "crm"), jwt_credential(issuer, "b", "crm-2")]
    auth = Authenticator("crm", AuthConfig.model_validate({"jwt": creds}), clock=clock)
    try:
        assert (await auth.authenticate(bearer(issuer.token(aud="crm")))).name == "a"
        assert (await auth.authenticate(bearer(issuer.token(aud="crm-2")))).name == "b"
        with pytest.raises(Unauthorized, match="another audience"):
            await auth.authenticate(bearer(issuer.token(aud="hr")))
    finally:
        await auth.aclose()
    assert issuer.fetches == 1
