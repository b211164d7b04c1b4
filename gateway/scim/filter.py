"""SCIM filters (RFC 7644 3.4.2.2) and sorting (3.4.2.3) over plain JSON resources.

A filter goes through three steps, each done once per request:

* :func:`parse_filter` turns the text into a scim2-models tree, tolerating the
  unquoted values some IdPs send;
* :func:`bind_filter` checks it against a :class:`ResourceType` and rewrites
  every attribute path to its canonical spelling, which is what adapters see;
* :func:`compile_filter` turns it into a closure that tests one resource dict.

Inside a value path (``emails[type eq "work"]``) the inner attribute paths
stay relative: they name sub-attributes of the outer attribute.

Resources are SCIM JSON dicts: core and common attributes at the top level
under their canonical names, extension attributes in an object under the
extension URN. Evaluation never raises on odd data; a value of the wrong type
simply does not match.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from scim2_models.exceptions import InvalidFilterException
from scim2_models.path import (
    ORDERING_OPERATORS,
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ScimFilter,
    ValuePath,
)

from gateway.errors import InvalidFilter, InvalidValue
from gateway.scim.schema import Attribute, Resolved, ResourceType

__all__ = [
    "Predicate",
    "bind_filter",
    "compile_filter",
    "filter_depth",
    "filter_leaves",
    "matches",
    "parse_filter",
    "sort_key_path",
    "sort_resources",
    "split_conjuncts",
    "uses_logic",
]

Predicate = Callable[[Mapping[str, Any]], bool]
_Values = Callable[[Mapping[str, Any]], list[Any]]
_Test = Callable[[Any], bool]

# ``schemas`` is filterable (RFC 7644 3.4.2.2 has an example) but is no schema
# attribute, so it gets a stand-in here. URNs compare without regard to case.
_SCHEMAS = Attribute("schemas", "reference", multi_valued=True, mutability="readOnly")

_STRING_TYPES = frozenset({"string", "reference", "binary"})
_NUMBER_TYPES = frozenset({"integer", "decimal"})
_UNORDERED_TYPES = frozenset({"boolean", "binary"})
_BOOLEAN_WORDS = {"true": True, "false": False}


# -- parsing --------------------------------------------------------------------------

_COMPARE_WORDS = frozenset(op.value for op in CompareOperator)
_KEYWORDS = _COMPARE_WORDS | {"and", "or", "not", "pr"}
# A string literal (possibly unterminated), a bracket, or a run of anything else.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[()\[\]]|[^\s()\[\]"]+')
_LITERAL = re.compile(r"true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.I)


def parse_filter(text: str, *, max_length: int = 4096, max_depth: int = 32) -> FilterNode:
    """Parse a filter; raise :class:`InvalidFilter` when it cannot be read.

    A filter longer than ``max_length`` characters or nesting deeper than
    ``max_depth`` (see :func:`filter_depth`) is refused: binding, push-down and
    evaluation all walk the tree, so its size is what a hostile client would grow.

    Operators and keywords match in any case. A bare token after a comparison
    operator (``userName eq bjensen``) is read as a string (IdP rule 13): when
    the text does not parse, it is parsed once more with such tokens quoted.
    Text that parses as it stands is never rewritten.
    """
    if len(text) > max_length:
        raise InvalidFilter(f"the filter is longer than {max_length} characters")
    if not text.strip():
        raise InvalidFilter("the filter is empty")
    try:
        node = _parse(text)
    except InvalidFilterException as exc:
        node = _parse_quoted(text, exc)
    if filter_depth(node) > max_depth:
        raise InvalidFilter(f"the filter nests deeper than {max_depth} levels")
    return node


def _parse_quoted(text: str, error: InvalidFilterException) -> FilterNode:
    fixed = _quote_bare_values(text)
    if fixed != text:
        try:
            return _parse(fixed)
        except InvalidFilterException:
            pass  # report the error of what the client actually sent
    raise InvalidFilter(_syntax_detail(error.detail)) from None


def filter_depth(node: FilterNode) -> int:
    """How deeply ``and``/``or``, ``not`` and value paths nest; a lone comparison is 1."""
    depth, level = 0, [(node, 1)]
    while level:
        current, at = level.pop()
        depth = max(depth, at)
        if isinstance(current, LogicalExpr):
            level.extend((term, at + 1) for term in current.terms)
        elif isinstance(current, Not):
            level.append((current.expr, at + 1))
        elif isinstance(current, ValuePath):
            level.append((current.val_filter, at + 1))
    return depth


#: The filter nearly every IdP request carries, ``attr[.sub] op "string"``, read without
#: the full grammar (the grammar's parser costs about a tenth of a millisecond a filter).
#: Only the strict form: one space around the operator, nothing before or after.
_SIMPLE = re.compile(
    r"(\$?[A-Za-z][A-Za-z0-9_-]*)(?:\.(\$?[A-Za-z][A-Za-z0-9_-]*))?"
    r' (eq|ne|co|sw|ew|gt|ge|lt|le) ("(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9A-Fa-f]{4})*")\Z',
    re.IGNORECASE,
)


def _parse_simple(text: str) -> Comparison | None:
    """``text`` as the Comparison the grammar would give, when it has the simple form."""
    found = _SIMPLE.match(text)
    if found is None:
        return None
    attr, sub, op, literal = found.groups()
    if attr.lower() == "not" and sub is None:
        return None  # the grammar reads "not" as the operator
    try:
        value = json.loads(literal)
    except ValueError:  # a lone surrogate escape and the like: the grammar decides
        return None
    path = AttrPath(attr=attr, sub_attr=sub, uri=None)
    return Comparison(attr_path=path, op=CompareOperator(op.lower()), value=value)


def _parse(text: str) -> FilterNode:
    simple = _parse_simple(text)
    if simple is not None:
        return simple
    try:
        return ScimFilter(text).ast
    except RecursionError:
        raise InvalidFilterException(detail="the filter nests too deeply") from None


def _syntax_detail(detail: str) -> str:
    if detail.startswith("invalid syntax"):
        return "invalid filter" + detail.removeprefix("invalid")
    return f"invalid filter: {detail}"


def _quote_bare_values(text: str) -> str:
    """Quote every bare token that stands where a comparison value belongs."""
    parts: list[str] = []
    last = 0
    previous = ""
    expect_value = False
    for match in _TOKEN.finditer(text):
        token = match.group()
        if expect_value:
            expect_value = False
            if _is_word(token) and not _LITERAL.fullmatch(token):
                parts += [text[last : match.start()], json.dumps(token)]
                last = match.end()
            previous = '""'  # a value: whatever follows is no comparison operator
            continue
        expect_value = token.lower() in _COMPARE_WORDS and _is_attribute_path(previous)
        previous = token
    return "".join([*parts, text[last:]])


def _is_word(token: str) -> bool:
    return token[0] not in '"()[]'


def _is_attribute_path(token: str) -> bool:
    return bool(token) and _is_word(token) and token.lower() not in _KEYWORDS


# -- binding --------------------------------------------------------------------------


class _Scope(Protocol):
    """Where the attribute paths of a (sub-)filter are resolved and read."""

    def resolve(self, path: AttrPath) -> Resolved: ...

    def path(self, resolved: Resolved) -> AttrPath: ...

    def values(self, resolved: Resolved) -> _Values: ...

    def enter(self, node: ValuePath) -> tuple[Resolved, _Scope]: ...


class _ResourceScope:
    """Paths at the top of a filter, resolved against the resource type."""

    def __init__(self, rtype: ResourceType) -> None:
        self.rtype = rtype

    def resolve(self, path: AttrPath) -> Resolved:
        if path.uri is None and path.sub_attr is None and path.attr.lower() == "schemas":
            return Resolved(None, _SCHEMAS)
        resolved = _resolve(self.rtype, path.attr, path.sub_attr, path.uri)
        if resolved is None:
            raise InvalidFilter(self._unknown(path))
        if resolved.target.returned == "never" or resolved.attribute.returned == "never":
            # Filtering on a write-only attribute (password) would let a client probe it.
            raise InvalidFilter(f"the attribute {resolved.dotted!r} cannot be used in a filter")
        return resolved

    def _unknown(self, path: AttrPath) -> str:
        if path.uri is not None and self.rtype.extension(f"{path.uri}:{path.attr}") is not None:
            return f"'{path.uri}:{path.attr}' is a schema, not an attribute"
        return f"{self.rtype.name} has no attribute {str(path)!r}"

    def path(self, resolved: Resolved) -> AttrPath:
        sub = resolved.sub.name if resolved.sub else None
        return AttrPath(resolved.attribute.name, sub, resolved.container)

    def values(self, resolved: Resolved) -> _Values:
        if resolved.attribute is _SCHEMAS:
            return _schemas_values(self.rtype)
        get = _getter(resolved.container, resolved.attribute.name)
        if resolved.sub is None:
            return lambda resource: _flatten(get(resource))
        return _sub_values(get, resolved.sub.name)

    def enter(self, node: ValuePath) -> tuple[Resolved, _Scope]:
        if node.sub_attr is not None:
            raise InvalidFilter(f"a filter cannot select {node.sub_attr!r} after a value filter")
        resolved = self.resolve(node.attr_path)
        if resolved.sub is not None or resolved.attribute.type != "complex":
            raise InvalidFilter(
                f"{resolved.dotted!r} is not a complex attribute to filter values of"
            )
        return resolved, _ElementScope(resolved)


def _resolve(rtype: ResourceType, attr: str, sub: str | None, uri: str | None) -> Resolved | None:
    """Like ``rtype.resolve``, also taking an extension attribute by its short name.

    Entra sends ``manager eq "m"`` for the enterprise manager; a short name is
    accepted when no core attribute and exactly one extension carry it.
    """
    resolved = rtype.resolve(attr, sub, uri)
    if resolved is not None or uri is not None:
        return resolved
    found = [rtype.resolve(attr, sub, ext.id) for ext, _ in rtype.extensions]
    hits = [hit for hit in found if hit is not None]
    return hits[0] if len(hits) == 1 else None


class _ElementScope:
    """Paths inside ``attr[...]``: sub-attributes of one value of ``attr``."""

    def __init__(self, outer: Resolved) -> None:
        self.outer = outer

    def resolve(self, path: AttrPath) -> Resolved:
        sub = self.outer.attribute.sub(path.attr)
        if path.uri is not None or path.sub_attr is not None or sub is None:
            name = self.outer.attribute.name
            raise InvalidFilter(f"{name!r} has no sub-attribute {str(path)!r}")
        return Resolved(self.outer.container, self.outer.attribute, sub)

    def path(self, resolved: Resolved) -> AttrPath:
        return AttrPath(resolved.target.name)

    def values(self, resolved: Resolved) -> _Values:
        name = resolved.target.name
        return lambda element: _flatten(element.get(name))

    def enter(self, node: ValuePath) -> tuple[Resolved, _Scope]:
        raise InvalidFilter("value filters cannot be nested")


def bind_filter(node: FilterNode, rtype: ResourceType) -> FilterNode:
    """Check ``node`` against ``rtype``; return it with canonical attribute paths.

    Core and common attributes get ``uri=None``, extension attributes the
    extension URN. A comparison on a complex attribute compares its ``value``
    sub-attribute. Boolean filter values may be the strings ``"true"`` and
    ``"false"`` in any case, and a number compared with a string attribute is
    read as its digits; both are normalised here so adapters see plain types.
    """
    return _bind(node, _ResourceScope(rtype))


def _bind(node: FilterNode, scope: _Scope) -> FilterNode:
    match node:
        case Comparison(attr_path=path, op=op, value=value):
            resolved = _comparison_target(scope.resolve(path), op)
            return Comparison(scope.path(resolved), op, _normalise_value(resolved.target, value))
        case Present(attr_path=path):
            return Present(scope.path(scope.resolve(path)))
        case Not(expr=expr):
            return Not(_bind(expr, scope))
        case LogicalExpr(op=op, terms=terms):
            return LogicalExpr(op, tuple(_bind(term, scope) for term in terms))
        case ValuePath(val_filter=inner):
            outer, inner_scope = scope.enter(node)
            return ValuePath(scope.path(outer), _bind(inner, inner_scope))
    raise InvalidFilter(f"unsupported filter expression {type(node).__name__}")


def _comparison_target(resolved: Resolved, op: CompareOperator) -> Resolved:
    """The attribute a comparison really compares; raise if it cannot compare it."""
    if resolved.target.type == "complex":
        value = resolved.attribute.sub("value")
        if value is None or op in ORDERING_OPERATORS:
            raise InvalidFilter(
                f"{resolved.dotted!r} is complex: compare one of its sub-attributes"
            )
        resolved = Resolved(resolved.container, resolved.attribute, value)
    if op in ORDERING_OPERATORS and resolved.target.type in _UNORDERED_TYPES:
        raise InvalidFilter(
            f"{op.value!r} cannot order the {resolved.target.type} attribute {resolved.dotted!r}"
        )
    return resolved


def _normalise_value(attribute: Attribute, value: Any) -> Any:
    if attribute.type == "boolean" and isinstance(value, str):
        return _BOOLEAN_WORDS.get(value.lower(), value)
    if attribute.type in _STRING_TYPES and _is_integer(value):
        return str(value)
    return value


# -- pushdown planning ----------------------------------------------------------------


def filter_leaves(node: FilterNode) -> list[tuple[str, str]]:
    """Every comparison and presence test of a bound filter as (lower-case path, operator).

    Paths are dotted and fully qualified, e.g. ``name.familyname``, ``emails.type``
    (also for ``emails[type eq "work"]``) or an extension URN followed by
    ``:employeenumber``.
    """
    match node:
        case Comparison(attr_path=path, op=op):
            return [(_dotted(path), op.value)]
        case Present(attr_path=path):
            return [(_dotted(path), "pr")]
        case Not(expr=expr):
            return filter_leaves(expr)
        case LogicalExpr(terms=terms):
            return [leaf for term in terms for leaf in filter_leaves(term)]
        case ValuePath(attr_path=outer, val_filter=inner):
            prefix = _dotted(outer)
            return [(f"{prefix}.{path}", op) for path, op in filter_leaves(inner)]
    return []


def _dotted(path: AttrPath) -> str:
    return str(path).lower()


def uses_logic(node: FilterNode) -> bool:
    """Whether the filter needs ``and``/``or``/``not``, also inside a value filter."""
    if isinstance(node, ValuePath):
        return uses_logic(node.val_filter)
    return isinstance(node, LogicalExpr | Not)


def split_conjuncts(node: FilterNode) -> list[FilterNode]:
    """The terms of a top-level ``and`` (nested ones flattened), else ``[node]``."""
    if isinstance(node, LogicalExpr) and node.op is LogicalOperator.and_:
        return [conjunct for term in node.terms for conjunct in split_conjuncts(term)]
    return [node]


def implied_terms(node: FilterNode) -> list[FilterNode]:
    """Plain terms a value-path conjunct implies, one per test in its top-level ``and``.

    ``emails[type eq "work" and value eq "x"]`` implies ``emails.type eq "work"`` and
    ``emails.value eq "x"``: some element has each. A backend that answers one of them
    narrows the candidates the whole term is then checked on. Anything else implies
    nothing this way (``[]``).
    """
    if not isinstance(node, ValuePath) or node.attr_path.sub_attr is not None:
        return []
    outer = node.attr_path
    implied: list[FilterNode] = []
    for inner in split_conjuncts(node.val_filter):
        if isinstance(inner, Comparison | Present) and inner.attr_path.sub_attr is None:
            path = AttrPath(attr=outer.attr, sub_attr=inner.attr_path.attr, uri=outer.uri)
            if isinstance(inner, Comparison):
                implied.append(Comparison(attr_path=path, op=inner.op, value=inner.value))
            else:
                implied.append(Present(attr_path=path))
    return implied


# -- evaluation -----------------------------------------------------------------------


def compile_filter(node: FilterNode, rtype: ResourceType) -> Predicate:
    """Turn a bound filter into a predicate over resource dicts.

    Compile once per request and call the result for each resource. Attribute
    names are resolved through ``rtype`` again, so a tree that is not bound
    works as well, or raises :class:`InvalidFilter` as :func:`bind_filter` would.
    """
    return _compile(node, _ResourceScope(rtype))


def compile_element_filter(node: FilterNode, outer: Resolved) -> Predicate:
    """Compile the filter of a value path (``emails[type eq "work"]``) over one element."""
    return _compile(node, _ElementScope(outer))


def matches(node: FilterNode, resource: Mapping[str, Any], rtype: ResourceType) -> bool:
    """Whether one resource matches; prefer :func:`compile_filter` in loops."""
    return compile_filter(node, rtype)(resource)


def _compile(node: FilterNode, scope: _Scope) -> Predicate:
    match node:
        case Comparison():
            return _compile_comparison(node, scope)
        case Present(attr_path=path):
            present = scope.values(scope.resolve(path))
            return lambda resource: any(map(_present, present(resource)))
        case Not(expr=expr):
            negated = _compile(expr, scope)
            return lambda resource: not negated(resource)
        case LogicalExpr(op=op, terms=terms):
            return _combine(op, [_compile(term, scope) for term in terms])
        case ValuePath(val_filter=inner):
            outer, inner_scope = scope.enter(node)
            return _any_element(scope.values(outer), _compile(inner, inner_scope))
    raise InvalidFilter(f"unsupported filter expression {type(node).__name__}")


def _combine(op: LogicalOperator, predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 2:  # the common case, without a generator per call
        first, second = predicates
        if op is LogicalOperator.and_:
            return lambda resource: first(resource) and second(resource)
        return lambda resource: first(resource) or second(resource)
    if op is LogicalOperator.and_:
        return lambda resource: all(p(resource) for p in predicates)
    return lambda resource: any(p(resource) for p in predicates)


def _any_element(elements: _Values, inner: Predicate) -> Predicate:
    def predicate(resource: Mapping[str, Any]) -> bool:
        return any(inner(e) for e in elements(resource) if isinstance(e, dict))

    return predicate


def _compile_comparison(node: Comparison, scope: _Scope) -> Predicate:
    resolved = _comparison_target(scope.resolve(node.attr_path), node.op)
    values = scope.values(resolved)
    if node.value is None:
        return _compile_null(node.op, values)
    test = _value_test(resolved.target, node.op, node.value)
    # RFC 7644 3.4.2.2: ``ne`` holds for a resource without the attribute.
    absent = node.op is CompareOperator.ne
    if test is None:  # the filter value can never equal a value of this attribute
        return lambda resource: absent and not values(resource)

    def predicate(resource: Mapping[str, Any]) -> bool:
        found = values(resource)
        return any(map(test, found)) if found else absent

    return predicate


def _compile_null(op: CompareOperator, values: _Values) -> Predicate:
    """``eq null`` holds when the attribute is absent, ``ne null`` when it is present."""
    if op is CompareOperator.eq:
        return lambda resource: not any(map(_present, values(resource)))
    if op is CompareOperator.ne:
        return lambda resource: any(map(_present, values(resource)))
    return lambda resource: False


_ORDER: dict[CompareOperator, Callable[[Any, Any], bool]] = {
    CompareOperator.eq: operator.eq,
    CompareOperator.ne: operator.ne,
    CompareOperator.gt: operator.gt,
    CompareOperator.ge: operator.ge,
    CompareOperator.lt: operator.lt,
    CompareOperator.le: operator.le,
}
_TEXT: dict[CompareOperator, Callable[[Any, Any], bool]] = {
    **_ORDER,
    CompareOperator.co: operator.contains,
    CompareOperator.sw: str.startswith,
    CompareOperator.ew: str.endswith,
}


def _value_test(attribute: Attribute, op: CompareOperator, value: Any) -> _Test | None:
    """A test of one attribute value against ``value``; None when nothing can match."""
    if attribute.type == "boolean":
        return _boolean_test(op, value)
    if attribute.type in _NUMBER_TYPES:
        return _number_test(op, value)
    if attribute.type == "dateTime":
        return _datetime_test(op, value)
    if attribute.type == "complex":
        return None
    return _string_test(op, value, attribute.case_exact)


def _string_test(op: CompareOperator, value: Any, case_exact: bool) -> _Test | None:
    if _is_integer(value):
        value = str(value)
    if not isinstance(value, str):
        return None
    compare = _TEXT[op]
    if case_exact:
        return lambda v: isinstance(v, str) and compare(v, value)
    folded = value.casefold()
    return lambda v: isinstance(v, str) and compare(v.casefold(), folded)


def _boolean_test(op: CompareOperator, value: Any) -> _Test | None:
    wanted = _as_bool(value)
    if wanted is None or op not in (CompareOperator.eq, CompareOperator.ne):
        return None
    if op is CompareOperator.eq:
        return lambda v: _as_bool(v) is wanted
    return lambda v: _as_bool(v) is (not wanted)


def _number_test(op: CompareOperator, value: Any) -> _Test | None:
    compare = _ORDER.get(op)
    if compare is None or not _is_number(value):
        return None
    return lambda v: _is_number(v) and compare(v, value)


def _datetime_test(op: CompareOperator, value: Any) -> _Test | None:
    compare = _ORDER.get(op)
    wanted = _instant(value)
    if compare is None or wanted is None:
        return None

    def test(v: Any) -> bool:
        found = _instant(v)
        return found is not None and compare(found, wanted)

    return test


# -- reading values -------------------------------------------------------------------


def _getter(container: str | None, name: str) -> Callable[[Mapping[str, Any]], Any]:
    if container is None:
        return lambda resource: resource.get(name)

    def get(resource: Mapping[str, Any]) -> Any:
        holder = resource.get(container)
        return holder.get(name) if isinstance(holder, dict) else None

    return get


def _flatten(value: Any) -> list[Any]:
    """The values an attribute holds: the items of a list, else the value itself."""
    if value is None:
        return []
    if isinstance(value, list):
        return [item for item in value if item is not None]
    return [value]


def _sub_values(get: Callable[[Mapping[str, Any]], Any], sub: str) -> _Values:
    """Values of ``attr.sub`` over every value of ``attr`` (RFC 7644: any may match)."""

    def values(resource: Mapping[str, Any]) -> list[Any]:
        raw = get(resource)
        items = raw if isinstance(raw, list) else (raw,)
        return [i[sub] for i in items if isinstance(i, dict) and i.get(sub) is not None]

    return values


def _schemas_values(rtype: ResourceType) -> _Values:
    """``schemas`` as the resource states it, else derived from its extension objects."""
    core, extensions = rtype.schema.id, [ext.id for ext, _ in rtype.extensions]

    def values(resource: Mapping[str, Any]) -> list[Any]:
        declared = resource.get("schemas")
        if isinstance(declared, list):
            return _flatten(declared)
        return [core, *(urn for urn in extensions if urn in resource)]

    return values


def _present(value: Any) -> bool:
    """RFC 7644 ``pr``: not null, not an empty string, list or object."""
    if isinstance(value, list):
        return any(map(_present, value))
    if isinstance(value, dict):
        return any(map(_present, value.values()))
    return value is not None and value != ""


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_bool(value: Any) -> bool | None:
    """A boolean, or its spelling as a string in any case (IdP rule 2)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and len(value) <= 5:
        return _BOOLEAN_WORDS.get(value.lower())
    return None


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 dateTime as an aware instant; a missing offset is read as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


# -- sorting --------------------------------------------------------------------------


def sort_key_path(sort_by: str, rtype: ResourceType) -> str:
    """The canonical dotted path ``sortBy`` designates, e.g. ``emails.value`` for ``emails``."""
    return _sort_target(sort_by, rtype).dotted


def sort_resources(
    resources: list[dict[str, Any]], sort_by: str, descending: bool, rtype: ResourceType
) -> list[dict[str, Any]]:
    """Sort per RFC 7644 3.4.2.3; return a new list.

    A multi-valued attribute sorts by its primary value, else its first one.
    Strings compare per the attribute's caseExact, dateTimes as instants.
    Resources without a value (null, ``""`` or one of the wrong type) sort last in
    ascending order and first in descending order, as the RFC says. The sort
    is stable in both directions.
    """
    value_of = _sort_value(_sort_target(sort_by, rtype))

    def key(resource: dict[str, Any]) -> tuple[int, Any]:
        value = value_of(resource)
        return (1, None) if value is None else (0, value)

    return sorted(resources, key=key, reverse=descending)


def _sort_target(sort_by: str, rtype: ResourceType) -> Resolved:
    text = sort_by.strip()
    found = rtype.lookup(text)
    if found is None and not text.lower().startswith("urn:"):
        attr, _, sub = text.partition(".")
        found = _resolve(rtype, attr, sub or None, None)
    if not isinstance(found, Resolved) or found.target.returned == "never":
        raise InvalidValue(f"sortBy names no sortable attribute of {rtype.name}: {sort_by!r}")
    if found.target.type != "complex":
        return found
    value = found.attribute.sub("value")
    if value is None:
        raise InvalidValue(f"sortBy {found.dotted!r} is complex: name one of its sub-attributes")
    return Resolved(found.container, found.attribute, value)


def _sort_value(resolved: Resolved) -> Callable[[Mapping[str, Any]], Any]:
    """Read the comparable sort value of a resource, None when it has none."""
    get = _getter(resolved.container, resolved.attribute.name)
    sub = resolved.sub.name if resolved.sub else None
    normalise = _sort_normaliser(resolved.target)

    def value_of(resource: Mapping[str, Any]) -> Any:
        value = get(resource)
        if isinstance(value, list):
            value = _primary(value)
        if sub is not None:
            value = value.get(sub) if isinstance(value, dict) else None
        return None if value is None or value == "" else normalise(value)

    return value_of


def _primary(values: list[Any]) -> Any:
    for value in values:
        if isinstance(value, dict) and _as_bool(value.get("primary")):
            return value
    return values[0] if values else None


def _sort_normaliser(attribute: Attribute) -> Callable[[Any], Any]:
    """Map a value to something that orders correctly against its peers, or None."""
    if attribute.type == "boolean":
        return _as_bool
    if attribute.type in _NUMBER_TYPES:
        return lambda v: v if _is_number(v) else None
    if attribute.type == "dateTime":
        return _instant
    if attribute.case_exact:
        return lambda v: v if isinstance(v, str) else None
    return lambda v: v.casefold() if isinstance(v, str) else None
