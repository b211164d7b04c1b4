"""Forwarding headers count only from trusted proxies: the client's address goes to the
operation (the audit), the scheme and host to ``Location`` and ``meta.location``.

The test client connects from 127.0.0.1, so "trusted" means 127.0.0.0/8 is listed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import ip_network
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from security.conftest import Journal
from support import BASE, TOKEN, digest

from gateway.app import create_app
from gateway.config import ConfigError, parse_settings
from gateway.http.proxies import Hop, resolve_client
from gateway.http.views import RECORDER

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
Gateway = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def gateway(aiohttp_client: ClientFactory, journal: Journal) -> Gateway:
    async def make(trusted: list[str], **server: Any) -> TestClient[web.Request, web.Application]:
        crm = {"adapter": "memory", "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]}}
        raw = {"server": {"trusted_proxies": trusted, **server}, "apps": {"crm": crm}}
        app = create_app(parse_settings(raw))
        app[RECORDER] = journal
        return await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})

    return make


async def create(client: TestClient[Any, Any], headers: dict[str, str]) -> tuple[str, str]:
    """POST a user; its Location and meta.location."""
    resp = await client.post(
        f"{BASE}/Users", json={"schemas": [USER], "userName": "bjensen"}, headers=headers
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json(content_type=None)
    return resp.headers["Location"], body["meta"]["location"]


async def test_a_trusted_proxy_names_the_client_scheme_and_host(
    gateway: Gateway, journal: Journal
) -> None:
    client = await gateway(["127.0.0.0/8"])
    headers = {
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "scim.example.com",
    }
    location, meta = await create(client, headers)
    assert location.startswith("https://scim.example.com/apps/crm/scim/v2/Users/")
    assert meta == location
    assert journal.closed_ops[-1].remote == "203.0.113.7"


async def test_addresses_left_of_the_first_untrusted_hop_are_ignored(
    gateway: Gateway, journal: Journal
) -> None:
    client = await gateway(["127.0.0.0/8", "10.0.0.0/8"])
    # The client made up 192.0.2.66; the edge proxy (10.0.0.5) saw 198.51.100.9.
    headers = {"X-Forwarded-For": "192.0.2.66, 198.51.100.9, 10.0.0.5"}
    await client.get(f"{BASE}/Users", headers=headers)
    assert journal.closed_ops[-1].remote == "198.51.100.9"


async def test_headers_from_an_untrusted_peer_are_ignored(
    gateway: Gateway, journal: Journal
) -> None:
    client = await gateway(["10.0.0.0/8"])  # 127.0.0.1 is not a proxy here
    headers = {
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "Forwarded": "for=203.0.113.8;proto=https;host=evil.example",
    }
    location, _ = await create(client, headers)
    assert location.startswith(f"http://127.0.0.1:{client.port}/")
    assert journal.closed_ops[-1].remote == "127.0.0.1"


async def test_without_trusted_proxies_nothing_is_believed(
    gateway: Gateway, journal: Journal
) -> None:
    client = await gateway([])
    location, _ = await create(
        client, {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    )
    assert location.startswith("http://127.0.0.1:")
    assert journal.closed_ops[-1].remote == "127.0.0.1"


@pytest.mark.parametrize(
    ("forwarded", "remote"),
    [
        ('for=198.51.100.9;proto=https;host="scim.example.com"', "198.51.100.9"),
        ('for="[2001:db8:cafe::17]:4711";proto=https;host=scim.example.com', "2001:db8:cafe::17"),
        ("for=192.0.2.66, for=198.51.100.9;proto=https;host=scim.example.com", "198.51.100.9"),
    ],
)
async def test_the_forwarded_header_is_honoured(
    gateway: Gateway, journal: Journal, forwarded: str, remote: str
) -> None:
    client = await gateway(["127.0.0.0/8"])
    location, _ = await create(client, {"Forwarded": forwarded})
    assert location.startswith("https://scim.example.com/")
    assert journal.closed_ops[-1].remote == remote


async def test_garbage_in_the_chain_stops_at_the_trusted_proxy(
    gateway: Gateway, journal: Journal
) -> None:
    client = await gateway(["127.0.0.0/8"])
    headers = {
        "X-Forwarded-For": "<script>, not-an-ip",
        "X-Forwarded-Proto": "gopher",
        "X-Forwarded-Host": "evil.example/path@x",
    }
    location, _ = await create(client, headers)
    assert location.startswith(f"http://127.0.0.1:{client.port}/")  # neither was believed
    assert journal.closed_ops[-1].remote == "127.0.0.1"


async def test_public_url_still_wins_for_locations(gateway: Gateway, journal: Journal) -> None:
    client = await gateway(["127.0.0.0/8"], public_url="https://id.example.org")
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Host": "other.example"}
    location, _ = await create(client, headers)
    assert location.startswith("https://id.example.org/apps/crm/")
    assert journal.closed_ops[-1].remote == "203.0.113.7"


def test_trusted_proxies_must_be_networks() -> None:
    crm = {"adapter": "memory", "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]}}
    with pytest.raises(ConfigError, match=r"server\.trusted_proxies\.0"):
        parse_settings({"server": {"trusted_proxies": ["not-a-cidr"]}, "apps": {"crm": crm}})


@pytest.mark.parametrize(
    ("peer", "chain", "client"),
    [
        ("10.0.0.1", ["203.0.113.7"], "203.0.113.7"),
        ("::ffff:10.0.0.1", ["203.0.113.7"], "203.0.113.7"),  # a dual-stack listener's peer
        ("10.0.0.1", ["10.0.0.9", "10.0.0.8"], "10.0.0.9"),  # only proxies: the leftmost
        ("10.0.0.1", ["203.0.113.7", "unknown"], "10.0.0.1"),  # cannot follow past "unknown"
        ("10.0.0.1", ["[2001:db8::1]:443"], "2001:db8::1"),
        ("192.0.2.1", ["203.0.113.7"], None),  # the peer is no proxy: nothing is believed
    ],
)
def test_the_client_is_the_rightmost_untrusted_address(
    peer: str, chain: list[str], client: str | None
) -> None:
    networks = [ip_network("10.0.0.0/8")]
    found = resolve_client(peer, [Hop(address) for address in chain], networks)
    assert (found[0] if found else None) == client
