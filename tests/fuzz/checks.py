"""What every answer to hostile input must be: a well-formed SCIM error, or a success."""

from __future__ import annotations

from typing import Any

from gateway.errors import ScimError

ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
#: RFC 7644 3.12, table 9.
SCIM_TYPES = frozenset(
    {
        "invalidFilter",
        "tooMany",
        "uniqueness",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidValue",
        "invalidVers",
        "sensitive",
    }
)


def assert_client_error(exc: ScimError) -> None:
    """A refusal of bad input: 400 with a scimType of RFC 7644, or 413, as SCIM JSON."""
    body = exc.to_json()
    assert exc.status in (400, 413), exc.status
    assert body["schemas"] == [ERROR_URN]
    assert body["status"] == str(exc.status)
    assert exc.status != 400 or body.get("scimType") in SCIM_TYPES, body


def assert_scim_error_body(status: int, content_type: str, body: Any) -> None:
    assert status < 500, (status, body)
    assert content_type in ("application/scim+json", "application/json"), content_type
    assert isinstance(body, dict), body
    assert body["schemas"] == [ERROR_URN], body
    assert body["status"] == str(status), body
    assert "scimType" not in body or body["scimType"] in SCIM_TYPES, body
    assert isinstance(body.get("detail", ""), str), body
