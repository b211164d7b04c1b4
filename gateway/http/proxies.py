"""Trusted reverse proxies: believe ``X-Forwarded-*`` and ``Forwarded`` only from them.

Anyone can send these headers, so they are read only when the direct peer is
in ``server.trusted_proxies``. The client is then the rightmost address in the
chain that is not itself a trusted proxy (each proxy appends the peer it saw,
so addresses left of an untrusted hop may be made up). The scheme and host
the client used become the request's, so ``meta.location`` and ``Location``
point where the client can reach them when ``public_url`` is unset.

``Forwarded`` (RFC 7239) wins over the ``X-Forwarded-*`` family when both come.
The middleware clones the request (aiohttp's way of overriding ``remote``,
``scheme`` and ``host``), so it must run outside every middleware that keeps
state on the request: keep it first in the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address

_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class Hop:
    """One forwarding step: the address it came from, and the scheme and host it was sent to."""

    address: str | None
    proto: str | None = None
    host: str | None = None


def _parse_address(node: str) -> Address | None:
    """An address from ``192.0.2.1``, ``192.0.2.1:80``, ``[2001:db8::1]:80`` or ``2001:db8::1``."""
    node = node.strip().strip('"')
    if node.startswith("["):
        node = node[1:].partition("]")[0]
    elif node.count(":") == 1:
        node = node.partition(":")[0]
    try:
        address = ip_address(node)
    except ValueError:
        return None
    # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d; match them as IPv4.
    mapped = address.ipv4_mapped if isinstance(address, IPv6Address) else None
    return mapped or address


def _csv(values: Sequence[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def forwarded_hops(request: web.Request) -> list[Hop]:
    """The chain the proxies reported, leftmost (farthest) first."""
    if "Forwarded" in request.headers:
        hops = []
        for element in _csv(request.headers.getall("Forwarded")):
            pairs = {}
            for pair in element.split(";"):
                key, _, value = pair.partition("=")
                pairs[key.strip().lower()] = value.strip().strip('"')
            hops.append(Hop(pairs.get("for"), pairs.get("proto"), pairs.get("host")))
        return hops
    fors = _csv(request.headers.getall("X-Forwarded-For", []))
    protos = _csv(request.headers.getall("X-Forwarded-Proto", []))
    hosts = _csv(request.headers.getall("X-Forwarded-Host", []))
    # One proto/host per hop when each proxy appended one; otherwise the client-facing
    # proxy's (the first) holds for the whole chain.
    hops = []
    for i, address in enumerate(fors):
        proto = protos[i] if len(protos) == len(fors) else (protos[0] if protos else None)
        host = hosts[i] if len(hosts) == len(fors) else (hosts[0] if hosts else None)
        hops.append(Hop(address, proto, host))
    if not hops and (protos or hosts):
        hops.append(Hop(None, protos[0] if protos else None, hosts[0] if hosts else None))
    return hops


def _trusted(address: Address | None, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in net for net in networks)


def resolve_client(
    peer: str | None, hops: list[Hop], networks: Sequence[Network]
) -> tuple[str, Hop] | None:
    """The client's address and the hop that reported it; None when nothing is believed."""
    if peer is None or not hops or not _trusted(_parse_address(peer), networks):
        return None
    client, reporter = peer, hops[-1]
    for hop in reversed(hops):
        address = _parse_address(hop.address or "")
        if address is None:
            # No address, "unknown", an obfuscated name or garbage: the chain cannot be
            # followed past it; the proxy that reported it stays the client.
            return client, hop
        client, reporter = str(address), hop
        if not _trusted(address, networks):
            break
    return client, reporter


def proxy_middleware(networks: Sequence[Network]) -> Middleware:
    """A middleware that takes the client's address, scheme and host from trusted proxies."""

    @web.middleware
    async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
        found = resolve_client(request.remote, forwarded_hops(request), networks)
        if found is None:
            return await handler(request)
        remote, hop = found
        proto = (hop.proto or "").lower()
        scheme = proto if proto in ("http", "https") else request.scheme
        host = hop.host if hop.host and _HOST.fullmatch(hop.host) else request.host
        return await handler(request.clone(remote=remote, scheme=scheme, host=host))

    return forwarded
