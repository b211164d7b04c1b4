"""TLS for direct exposure: the server's context from ``server.tls`` (PEM cert and key)."""

from __future__ import annotations

import ssl

from gateway.config import ConfigError, TlsConfig


def server_context(tls: TlsConfig) -> ssl.SSLContext:
    """TLS 1.2 or newer with Python's default ciphers; ConfigError if the pair does not load."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"server.tls: cannot load {tls.cert} and {tls.key}: {exc}") from None
    return context
