"""Any PATCH body either applies to a user or a group, or is refused as a SCIM 400/413."""

from __future__ import annotations

import copy
from typing import Any

from fuzz.checks import assert_client_error
from fuzz.strategies import PATCH_URN, patch_body, patch_path
from hypothesis import given

from gateway.errors import ScimError
from gateway.scim.patch import apply_patch, parse_patch
from gateway.scim.resource import check_required
from gateway.scim.schema import build_resource_types

TYPES = build_resource_types()
CURRENT: dict[str, dict[str, Any]] = {
    "User": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223",
        "userName": "bjensen",
        "active": True,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": "b@example.com", "type": "work", "primary": True}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m"}},
    },
    "Group": {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "e9e30dba",
        "displayName": "Tour Guides",
        "members": [{"value": "2819c223", "display": "Babs"}],
    },
}


def apply_everywhere(body: Any) -> None:
    try:
        ops = parse_patch(body, max_operations=3)
    except ScimError as exc:
        assert_client_error(exc)
        return
    for name, rtype in TYPES.items():
        before = copy.deepcopy(CURRENT[name])
        try:
            result = apply_patch(CURRENT[name], ops, rtype)
            check_required(result, rtype)
        except ScimError as exc:
            assert_client_error(exc)
        else:
            assert isinstance(result, dict)
        assert CURRENT[name] == before, "apply_patch changed its input"


@given(patch_body())
def test_any_patch_body_applies_or_is_a_scim_client_error(body: Any) -> None:
    apply_everywhere(body)


@given(patch_path)
def test_any_path_with_any_op_applies_or_is_a_scim_client_error(path: str) -> None:
    for op in ("add", "replace", "remove"):
        for value in ("x", {"value": "v", "type": "work"}, [{"value": "2819c223"}], True, None):
            body = {
                "schemas": [PATCH_URN],
                "Operations": [{"op": op, "path": path, "value": value}],
            }
            apply_everywhere(body)
