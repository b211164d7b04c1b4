"""``scim-gateway serve`` with ``server.tls``: HTTPS on loopback, checked by a verifying client.

The certificate is made in the test (cryptography, self-signed for 127.0.0.1);
the client trusts exactly it, so a handshake that succeeds proves the gateway
serves that certificate.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from rest_support import closed_port
from support import TOKEN, digest

from gateway.cli import main


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scim-gateway test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def write_config(folder: Path, port: int, tls: dict[str, str]) -> Path:
    config = {
        "server": {"host": "127.0.0.1", "port": port, "tls": tls},
        "apps": {
            "crm": {
                "adapter": "memory",
                "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
            }
        },
    }
    path = folder / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _ready(port: int, context: ssl.SSLContext, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            with (
                socket.create_connection(("127.0.0.1", port), timeout=0.5) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1"),
            ):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("serve did not start")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, ssl.SSLContext]]:
    cert, key = self_signed(tmp_path)
    port = closed_port()
    config = write_config(tmp_path, port, {"cert": str(cert), "key": str(key)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    context = ssl.create_default_context(cafile=str(cert))
    try:
        _ready(port, context, proc)
        yield port, context
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(
    port: int, context: ssl.SSLContext, method: str, path: str, body: Any = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
        conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), json.loads(resp.read() or b"null")
    finally:
        conn.close()


def test_serve_speaks_https_with_the_configured_certificate(
    served: tuple[int, ssl.SSLContext],
) -> None:
    port, context = served
    user = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "tls-user"}
    status, headers, body = request(port, context, "POST", "/apps/crm/scim/v2/Users", user)
    assert status == 201
    # The request came over TLS, so the locations the gateway builds are https.
    assert headers["Location"].startswith(f"https://127.0.0.1:{port}/apps/crm/scim/v2/Users/")
    assert body["meta"]["location"] == headers["Location"]
    status, _, listed = request(port, context, "GET", "/apps/crm/scim/v2/Users")
    assert (status, listed["totalResults"]) == (200, 1)


def test_plain_http_gets_no_scim_answer(served: tuple[int, ssl.SSLContext]) -> None:
    port, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            conn.request("GET", "/apps/crm/scim/v2/Users")
            conn.getresponse().read()
    finally:
        conn.close()


def test_a_client_that_does_not_trust_the_certificate_is_refused_the_handshake(
    served: tuple[int, ssl.SSLContext],
) -> None:
    port, _ = served
    stranger = ssl.create_default_context()  # the system's CAs, not our self-signed one
    with (
        pytest.raises(ssl.SSLCertVerificationError),
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        stranger.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass


def test_a_missing_certificate_file_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path, 0, {"cert": str(tmp_path / "nope.pem"), "key": str(tmp_path / "nope.key")}
    )
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--config", str(config)])
    assert exit_.value.code == 2
    assert "server.tls.cert: no such file" in capsys.readouterr().err


def test_a_key_that_does_not_fit_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cert, _ = self_signed(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    _, wrong_key = self_signed(other)
    config = write_config(tmp_path, 0, {"cert": str(cert), "key": str(wrong_key)})
    assert main(["serve", "--config", str(config)]) == 2
    assert "server.tls: cannot load" in capsys.readouterr().err
