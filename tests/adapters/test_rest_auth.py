"""Authentication toward the legacy app: none, API key, bearer, basic, OAuth 2.0."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from aiohttp import web
from rest_support import (
    API_KEY,
    Opener,
    Recorder,
    ServerFactory,
    json_response,
    make_adapter,
    opened_fixture,  # noqa: F401 - the `opened` fixture
)

from adapters.rest import RestAdapter
from adapters.rest.auth import OAuth2ClientCredentials
from gateway.sdk import UpstreamError

CLIENT_SECRET = "cl13nt-s3cr3t-value"
RECORD = {"id": "7", "login": "bjensen"}


class TokenServer:
    """A token endpoint and an API that accepts only the newest token it issued."""

    def __init__(self, expires_in: int = 3600, client_auth: str = "basic") -> None:
        self.issued: list[str] = []
        self.expires_in = expires_in
        self.client_auth = client_auth
        self.forms: list[dict[str, str]] = []

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.forms.append(form)
        if self.client_auth == "basic":
            expected = base64.b64encode(f"gw:{CLIENT_SECRET}".encode()).decode()
            ok = request.headers.get("Authorization") == f"Basic {expected}"
        else:
            ok = (form.get("client_id"), form.get("client_secret")) == ("gw", CLIENT_SECRET)
        if not ok or form.get("grant_type") != "client_credentials":
            return json_response({"error": "invalid_client"}, 401)
        self.issued.append(f"token-{len(self.issued) + 1}")
        body = {"access_token": self.issued[-1], "token_type": "Bearer"}
        return json_response({**body, "expires_in": self.expires_in})

    async def item(self, request: web.Request) -> web.Response:
        if not self.issued or request.headers.get("Authorization") != f"Bearer {self.issued[-1]}":
            return json_response({"error": "unauthorized"}, 401)
        return json_response(RECORD)

    def revoke(self) -> None:
        self.issued.append("revoked")


async def _oauth_adapter(
    aiohttp_server: ServerFactory,
    opened: Opener,
    tokens: TokenServer,
    recorder: Recorder,
    **auth: Any,
) -> RestAdapter:
    app = web.Application(middlewares=[recorder.middleware])
    app.router.add_post("/oauth/token", tokens.token)
    app.router.add_get("/api/items/{id}", tokens.item)
    server = await aiohttp_server(app)
    settings = {
        "type": "oauth2",
        "token_url": str(server.make_url("/oauth/token")),
        "client_id": "gw",
        "client_secret": CLIENT_SECRET,
        "scope": "users:write",
        **auth,
    }
    return await opened(make_adapter(str(server.make_url("/api")), auth=settings))


async def _static_adapter(
    aiohttp_server: ServerFactory, opened: Opener, auth: dict[str, Any], recorder: Recorder
) -> RestAdapter:
    async def item(request: web.Request) -> web.Response:
        return json_response(RECORD)

    app = web.Application(middlewares=[recorder.middleware])
    app.router.add_get("/api/items/{id}", item)
    server = await aiohttp_server(app)
    return await opened(make_adapter(str(server.make_url("/api")), auth=auth))


@pytest.mark.parametrize(
    "auth,header,value",
    [
        ({"type": "api_key", "header": "X-Api-Key", "key": API_KEY}, "X-Api-Key", API_KEY),
        ({"type": "bearer", "token": "b34r3r"}, "Authorization", "Bearer b34r3r"),
        (
            {"type": "basic", "username": "gw", "password": "pa55word"},
            "Authorization",
            "Basic " + base64.b64encode(b"gw:pa55word").decode(),
        ),
    ],
)
async def test_each_static_scheme_sends_its_header(
    aiohttp_server: ServerFactory, opened: Opener, auth: dict[str, Any], header: str, value: str
) -> None:
    recorder = Recorder()
    adapter = await _static_adapter(aiohttp_server, opened, auth, recorder)
    await adapter.get("User", "7")
    assert recorder.calls[0].headers[header] == value


async def test_no_auth_sends_no_credentials(aiohttp_server: ServerFactory, opened: Opener) -> None:
    recorder = Recorder()
    adapter = await _static_adapter(aiohttp_server, opened, {"type": "none"}, recorder)
    await adapter.get("User", "7")
    assert "Authorization" not in recorder.calls[0].headers
    assert "X-Api-Key" not in recorder.calls[0].headers


async def test_a_secret_can_come_from_the_environment(
    aiohttp_server: ServerFactory, opened: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEGACY_TOKEN", "fr0m-env")
    recorder = Recorder()
    adapter = await _static_adapter(
        aiohttp_server, opened, {"type": "bearer", "token": "${env:LEGACY_TOKEN}"}, recorder
    )
    await adapter.get("User", "7")
    assert recorder.calls[0].headers["Authorization"] == "Bearer fr0m-env"


async def test_the_oauth2_token_is_fetched_once_and_reused(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    tokens, recorder = TokenServer(), Recorder()
    adapter = await _oauth_adapter(aiohttp_server, opened, tokens, recorder)
    for _ in range(3):
        assert (await adapter.get("User", "7")).id == "7"
    assert tokens.issued == ["token-1"]
    assert tokens.forms[0]["scope"] == "users:write"


async def test_an_expired_oauth2_token_is_renewed(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    tokens = TokenServer(expires_in=300)
    adapter = await _oauth_adapter(aiohttp_server, opened, tokens, Recorder())
    auth = adapter.client.auth
    assert isinstance(auth, OAuth2ClientCredentials)
    now = [1000.0]
    auth.clock = lambda: now[0]
    await adapter.get("User", "7")
    now[0] += 250  # within expires_in, but past the 30 s margin before it
    await adapter.get("User", "7")
    now[0] += 20
    await adapter.get("User", "7")
    assert tokens.issued == ["token-1", "token-2"]


async def test_a_401_fetches_a_new_token_and_retries_once(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    tokens, recorder = TokenServer(), Recorder()
    adapter = await _oauth_adapter(aiohttp_server, opened, tokens, recorder)
    await adapter.get("User", "7")
    tokens.revoke()  # the app no longer accepts token-1
    assert (await adapter.get("User", "7")).id == "7"
    assert tokens.issued == ["token-1", "revoked", "token-3"]
    api_calls = [c for c in recorder.calls if c.raw_path.startswith("/api/")]
    assert [c.headers["Authorization"] for c in api_calls] == [
        "Bearer token-1",
        "Bearer token-1",
        "Bearer token-3",
    ]


async def test_client_credentials_can_travel_in_the_form(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    tokens = TokenServer(client_auth="body")
    adapter = await _oauth_adapter(aiohttp_server, opened, tokens, Recorder(), client_auth="body")
    await adapter.get("User", "7")
    assert tokens.issued == ["token-1"]


async def test_refused_client_credentials_are_a_502_without_the_secret(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await _oauth_adapter(
        aiohttp_server, opened, TokenServer(), Recorder(), client_secret="wrong-s3cret-value"
    )
    with pytest.raises(UpstreamError) as caught:
        await adapter.get("User", "7")
    assert caught.value.status == 502
    assert "refused the client credentials" in caught.value.detail
    assert "wrong-s3cret-value" not in str(caught.value.to_json())


async def test_a_static_credential_the_app_refuses_is_a_502_not_a_401(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return json_response({"error": f"bad key {request.headers.get('X-Api-Key')}"}, 401)

    app = web.Application()
    app.router.add_get("/api/items/{id}", refuse)
    server = await aiohttp_server(app)
    adapter = await opened(make_adapter(str(server.make_url("/api"))))
    with pytest.raises(UpstreamError) as caught:
        await adapter.get("User", "7")
    assert caught.value.status == 502
    assert API_KEY not in str(caught.value.to_json())
