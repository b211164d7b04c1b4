"""Hypothesis strategies: filter text, PATCH operations and request bodies, well- and ill-formed.

Each strategy mixes tokens SCIM knows (attribute names, operators in any case, URNs,
value paths) with noise (quotes, brackets, control characters, huge numbers), so most
examples get past the first character and into the parser's and evaluator's depths.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

ATTRIBUTES = [
    "userName", "username", "displayName", "active", "title", "id", "externalId",
    "name", "name.givenName", "name.familyName", "emails", "emails.value", "emails.type",
    "emails.primary", "phoneNumbers.value", "addresses.postalCode", "meta.created",
    "meta.lastModified", "meta.resourceType", "groups", "groups.value", "password",
    "members", "members.value", "schemas", "x-unknown", "emails.value.deeper", "",
    f"{USER_URN}:userName", f"{ENTERPRISE_URN}:employeeNumber",
    f"{ENTERPRISE_URN}:manager.value", f"{ENTERPRISE_URN}:manager", "urn:x:y:z",
]  # fmt: skip
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Co", "pr", "xx"]
WEIRD = ['"', "\\", "[", "]", "(", ")", "\x00", "\u2028", "\ufeff", "'", "%", "{{", "}}"]

attribute = st.sampled_from(ATTRIBUTES) | st.text(max_size=12)
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["True", "False", "2011-08-01T21:32:44.882Z", "not-a-date", ""])
)


def _usually(draw: st.DrawFn, in_ten: int) -> bool:
    """True ``in_ten`` times in ten (``integers(0, 9)`` would favour 0, Hypothesis' edge case)."""
    return bool(draw(st.sampled_from([True] * in_ten + [False] * (10 - in_ten))))


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


LITERALS = ["true", "false", "null", "1", "-2.5e3", "9" * 30, '"2011-08-01T21:32:44Z"']
filter_value = st.one_of(
    st.text(max_size=16).map(_quoted),
    st.sampled_from(LITERALS),
    st.lists(st.sampled_from([*WEIRD, "a", "b", " ", "0"]), max_size=8).map("".join),
)


@st.composite
def comparison(draw: st.DrawFn) -> str:
    attr, op = draw(attribute), draw(st.sampled_from(OPERATORS))
    if op == "pr":
        return f"{attr} pr"
    return f"{attr} {op} {draw(filter_value)}"


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, st.sampled_from(["and", "or", "AND", "Or"]), children).map(" ".join),
        children.map(lambda c: f"not ({c})"),
        children.map(lambda c: f"({c})"),
        st.tuples(st.sampled_from(ATTRIBUTES), children).map(lambda t: f"{t[0]}[{t[1]}]"),
    )


#: Filter text: mostly grammar-shaped, sometimes arbitrary.
filter_text = st.recursive(comparison(), _combine, max_leaves=8) | st.text(max_size=60)

patch_path = st.one_of(
    st.sampled_from(ATTRIBUTES),
    st.sampled_from(ATTRIBUTES),
    st.tuples(st.sampled_from(ATTRIBUTES), filter_text).map(lambda t: f"{t[0]}[{t[1]}]"),
    st.tuples(st.sampled_from(ATTRIBUTES), filter_text, attribute).map(
        lambda t: f"{t[0]}[{t[1]}].{t[2]}"
    ),
    st.text(max_size=30),
)

key = attribute | st.sampled_from(["value", "type", "primary", "display", "$ref"])
json_value = st.recursive(
    json_scalar,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(key, children, max_size=4),
    max_leaves=12,
)


OP_NAMES = ["add", "replace", "remove", "Add", "REPLACE", "Remove"]
#: Values a PATCH would plausibly carry, for most operations; any JSON for the rest.
_element = st.fixed_dictionaries({"value": st.text(max_size=8)}, optional={"type": key})
_short = st.text(max_size=8) | st.booleans()
patch_value = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.lists(_element, max_size=3),
    st.dictionaries(st.sampled_from(ATTRIBUTES[:12]), _short, max_size=3),
    json_value,
)


@st.composite
def patch_operation(draw: st.DrawFn) -> Any:
    """Mostly a well-formed operation (so most get past parsing), sometimes anything."""
    if not _usually(draw, 9):
        return draw(json_value)
    op: dict[str, Any] = {}
    if _usually(draw, 9):
        name = st.sampled_from(OP_NAMES) if _usually(draw, 9) else json_scalar
        op[draw(st.sampled_from(["op", "OP", "Op"]))] = draw(name)
    if _usually(draw, 7):
        op["path"] = draw(patch_path if _usually(draw, 9) else json_scalar)
    if _usually(draw, 8):
        op["value"] = draw(patch_value)
    return op


@st.composite
def patch_body(draw: st.DrawFn) -> Any:
    """Mostly a PatchOp with one to three operations, sometimes a broken envelope."""
    body: dict[str, Any] = {}
    if _usually(draw, 9):
        body["schemas"] = [PATCH_URN] if _usually(draw, 9) else draw(json_value)
    operations = st.lists(patch_operation(), min_size=1, max_size=3)
    key = draw(st.sampled_from(["Operations", "operations"]))
    body[key] = draw(operations if _usually(draw, 9) else json_value)
    return body


@st.composite
def user_body(draw: st.DrawFn) -> Any:
    """A User-ish body: known attributes with values of any JSON type."""
    body: dict[str, Any] = {"schemas": draw(st.just([USER_URN]) | json_value)}
    names = draw(st.lists(st.sampled_from(ATTRIBUTES[:20]) | attribute, max_size=6))
    for name in names:
        body[name] = draw(json_value)
    if draw(st.booleans()):
        body["userName"] = draw(st.text(min_size=1, max_size=20))
    return body
