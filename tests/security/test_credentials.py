"""Each kind of credential lets in the right caller, names it for the audit, and refuses the rest.

Refusals are 401 SCIM errors with an RFC 6750 challenge; no refusal body or log
line ever carries the token or password that was sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time
from typing import Any

import jwt
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from jwt_issuer import ISSUER, Issuer
from security.conftest import CRM_PASSWORD, HR_PASSWORD, READER_TOKEN, Journal, basic, bearer
from support import BASE, OTHER_TOKEN, TOKEN

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
Client = TestClient[web.Request, web.Application]


async def refused(gateway: Client, headers: dict[str, str], path: str = "/Users") -> str:
    """Send a GET that must be refused; check the SCIM error and the challenge; the detail."""
    resp = await gateway.get(f"{BASE}{path}", headers=headers)
    assert resp.status == 401
    body = await resp.json(content_type=None)
    assert body["schemas"] == [ERROR]
    assert body["status"] == "401"
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="scim-gateway"')
    assert 'Basic realm="scim-gateway"' in challenge  # the app takes Basic too
    detail: str = body["detail"]
    return detail


# -- accepted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        (bearer(TOKEN), "crm-token"),
        ({"Authorization": TOKEN}, "crm-token"),  # Okta's header mode: the bare token
        (basic("crm-user", CRM_PASSWORD), "crm-basic"),
        ({"Authorization": f"bearer {TOKEN}"}, "crm-token"),  # the scheme has no case
    ],
)
async def test_each_credential_is_accepted_and_named_in_the_operation(
    gateway: Client, journal: Journal, headers: dict[str, str], name: str
) -> None:
    resp = await gateway.get(f"{BASE}/Users", headers=headers)
    assert resp.status == 200, await resp.text()
    assert journal.clients == [name]


async def test_a_signed_jwt_for_the_app_is_accepted_and_named(
    gateway: Client, issuer: Issuer, journal: Journal
) -> None:
    resp = await gateway.post(
        f"{BASE}/Users",
        json={"schemas": [USER], "userName": "jwt-made"},
        headers=bearer(issuer.token()),
    )
    assert resp.status == 201, await resp.text()
    assert journal.clients == ["crm-jwt"]


async def test_a_basic_password_given_as_a_secret_is_accepted(gateway: Client) -> None:
    resp = await gateway.get("/apps/hr/scim/v2/Users", headers=basic("hr-user", HR_PASSWORD))
    assert resp.status == 200


async def test_no_credentials_get_a_challenge_without_an_error_code(gateway: Client) -> None:
    resp = await gateway.get(f"{BASE}/Users")
    assert resp.status == 401
    # RFC 6750 3.1: no error code when the request carried no credentials at all.
    assert "error=" not in resp.headers["WWW-Authenticate"]
    assert (await resp.json(content_type=None))["detail"] == "authentication required"


# -- read-only ----------------------------------------------------------------------------


async def test_a_read_only_credential_reads_and_searches(gateway: Client) -> None:
    headers = bearer(READER_TOKEN)
    assert (await gateway.get(f"{BASE}/Users", headers=headers)).status == 200
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    assert (await gateway.post(f"{BASE}/Users/.search", json=search, headers=headers)).status == 200
    assert (await gateway.post(f"{BASE}/.search", json=search, headers=headers)).status == 200
    assert (await gateway.get(f"{BASE}/Schemas", headers=headers)).status == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/Users", {"schemas": [USER], "userName": "nope"}),
        ("PUT", "/Users/{id}", {"schemas": [USER], "userName": "renamed"}),
        (
            "PATCH",
            "/Users/{id}",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "userName", "value": "x"}],
            },
        ),
        ("DELETE", "/Users/{id}", None),
        (
            "POST",
            "/Bulk",
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
                "Operations": [{"method": "DELETE", "path": "/Users/{id}"}],
            },
        ),
    ],
)
async def test_a_read_only_credential_gets_403_for_every_write_and_nothing_changes(
    gateway: Client, method: str, path: str, body: Any
) -> None:
    created = await gateway.post(
        f"{BASE}/Users", json={"schemas": [USER], "userName": "kept"}, headers=bearer(TOKEN)
    )
    user_id = (await created.json(content_type=None))["id"]
    if body is not None and "Operations" in body and method == "POST":
        body["Operations"][0]["path"] = f"/Users/{user_id}"
    resp = await gateway.request(
        method, f"{BASE}{path.format(id=user_id)}", json=body, headers=bearer(READER_TOKEN)
    )
    assert resp.status == 403
    error = await resp.json(content_type=None)
    assert (error["schemas"], error["status"]) == ([ERROR], "403")
    listed = await gateway.get(f"{BASE}/Users", headers=bearer(TOKEN))
    users = (await listed.json(content_type=None))["Resources"]
    assert [u["userName"] for u in users] == ["kept"]


# -- refused ------------------------------------------------------------------------------


async def test_a_wrong_token_is_refused(gateway: Client) -> None:
    assert await refused(gateway, bearer("not-the-token")) == "invalid credentials"


async def test_another_apps_token_is_refused(gateway: Client) -> None:
    assert await refused(gateway, bearer(OTHER_TOKEN)) == "invalid credentials"


@pytest.mark.parametrize(
    "headers",
    [
        basic("crm-user", "wrong-password"),
        basic("hr-user", HR_PASSWORD),  # another app's login
        basic("nobody", CRM_PASSWORD),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
    ],
)
async def test_wrong_basic_credentials_are_refused(
    gateway: Client, headers: dict[str, str]
) -> None:
    await refused(gateway, headers)


async def test_an_expired_jwt_is_refused(gateway: Client, issuer: Issuer) -> None:
    past = int(time.time()) - 3600
    token = issuer.token(iat=past - 600, nbf=past - 600, exp=past)
    assert await refused(gateway, bearer(token)) == "the token has expired"


async def test_a_jwt_expired_within_the_leeway_is_accepted(gateway: Client, issuer: Issuer) -> None:
    token = issuer.token(exp=int(time.time()) - 5)  # the default leeway is 60 s
    assert (await gateway.get(f"{BASE}/Users", headers=bearer(token))).status == 200


async def test_a_jwt_not_valid_yet_is_refused(gateway: Client, issuer: Issuer) -> None:
    token = issuer.token(nbf=int(time.time()) + 3600)
    assert await refused(gateway, bearer(token)) == "the token is not valid yet"


async def test_a_jwt_without_expiry_is_refused(gateway: Client, issuer: Issuer) -> None:
    token = issuer.token(exp=None)
    assert await refused(gateway, bearer(token)) == "the token has no exp claim"


async def test_a_jwt_for_another_audience_is_refused(gateway: Client, issuer: Issuer) -> None:
    token = issuer.token(aud="hr")
    assert await refused(gateway, bearer(token)) == "the token is meant for another audience"


async def test_a_jwt_from_another_issuer_is_refused(gateway: Client, issuer: Issuer) -> None:
    token = issuer.token(iss="https://evil.test/")
    assert await refused(gateway, bearer(token)) == "the token is from another issuer"
    assert issuer.fetches == 0  # a stranger's token never makes the gateway fetch keys


async def test_a_jwt_signed_with_an_unpublished_key_is_refused(
    gateway: Client, issuer: Issuer
) -> None:
    issuer.add_key("forged", publish=False)
    token = issuer.token("forged")
    assert await refused(gateway, bearer(token)) == "the token's signing key is unknown"


async def test_a_jwt_whose_signature_does_not_match_its_kid_is_refused(
    gateway: Client, issuer: Issuer
) -> None:
    issuer.add_key("other", publish=False)
    body = {"iss": ISSUER, "aud": "crm", "exp": int(time.time()) + 600}
    # Signed with an unpublished key but claiming the published kid.
    token = jwt.encode(body, issuer.keys["other"], algorithm="RS256", headers={"kid": "k1"})
    assert await refused(gateway, bearer(token)) == "the token's signature or claims are not valid"


async def test_an_unsigned_jwt_with_alg_none_is_refused(gateway: Client, issuer: Issuer) -> None:
    body = {"iss": ISSUER, "aud": "crm", "exp": int(time.time()) + 600}
    token = jwt.encode(body, None, algorithm="none", headers={"kid": "k1"})
    assert await refused(gateway, bearer(token)) == "the token's signing algorithm is not allowed"


async def test_an_hs256_jwt_keyed_with_the_public_key_is_refused(
    gateway: Client, issuer: Issuer
) -> None:
    """The classic algorithm confusion: the issuer's public key used as an HMAC secret."""
    public = (
        issuer.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    body = {"iss": ISSUER, "aud": "crm", "exp": int(time.time()) + 600}
    header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT","kid":"k1"}').rstrip(b"=")
    payload = base64.urlsafe_b64encode(orjson.dumps(body)).rstrip(b"=")
    signature = hmac.new(public, header + b"." + payload, hashlib.sha256).digest()
    token = b".".join([header, payload, base64.urlsafe_b64encode(signature).rstrip(b"=")])
    assert await refused(gateway, bearer(token.decode())) == (
        "the token's signing algorithm is not allowed"
    )


@pytest.mark.parametrize("token", ["a.b.c", "not-a-jwt-at-all", "eyJ.eyJ.sig"])
async def test_garbage_bearer_tokens_are_refused(gateway: Client, token: str) -> None:
    await refused(gateway, bearer(token))


# -- secrets ------------------------------------------------------------------------------


async def test_no_refusal_body_or_log_line_carries_the_secret_sent(
    gateway: Client, issuer: Issuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    expired = issuer.token(exp=int(time.time()) - 3600)
    wrong_aud = issuer.token(aud="hr")
    attempts = {
        "a wrong token": bearer("wr0ng-t0ken-value-123"),
        "another app's token": bearer(OTHER_TOKEN),
        "a bare wrong token": {"Authorization": "bare-wr0ng-t0ken-456"},
        "a wrong password": basic("crm-user", "wr0ng-pa55word-789"),
        "another app's login": basic("hr-user", HR_PASSWORD),
        "an expired jwt": bearer(expired),
        "a jwt for hr": bearer(wrong_aud),
    }
    secrets = [
        "wr0ng-t0ken-value-123",
        OTHER_TOKEN,
        "bare-wr0ng-t0ken-456",
        "wr0ng-pa55word-789",
        HR_PASSWORD,
        CRM_PASSWORD,
        TOKEN,
        READER_TOKEN,
        expired,
        wrong_aud,
    ]
    for what, headers in attempts.items():
        resp = await gateway.get(f"{BASE}/Users", headers=headers)
        assert resp.status == 401, what
        text = await resp.text() + str(resp.headers)
        assert not [s for s in secrets if s in text], what
        encoded = headers["Authorization"].split(" ", 1)[-1]
        assert encoded not in text, what
    logged = [r.getMessage() for r in caplog.records]
    assert any("credentials refused" in line for line in logged)  # refusals are logged...
    assert not [s for s in secrets if any(s in line for line in logged)]  # ...without secrets
