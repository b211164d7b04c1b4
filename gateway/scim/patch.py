"""SCIM PATCH (RFC 7644 3.5.2) over plain JSON resources.

:func:`parse_patch` reads a PatchOp body, :func:`apply_patch` applies the
operations to a copy of a resource, all or nothing. Both follow the IdP rules
in ``IDP-RULES.md``; the less obvious choices:

* a ``replace`` whose value is null, ``""`` or empty clears its target, since
  RFC 7643 2.5 makes those equivalent to unassigned (Entra clears that way);
  an ``add`` of such a value changes nothing;
* inside a complex value, null still means "not provided": replacing ``name``
  with ``{"givenName": null}`` leaves ``givenName`` alone;
* add/replace on a value-filtered path with no match creates the element from
  the filter's ``eq`` terms (rule 5); remove with no match is a no-op;
* a multi-valued ``add`` skips values already there (rule 7): complex values
  with a ``value`` sub-attribute are the same when their ``value`` (and
  ``type``, when both carry one) are equal, and the new sub-attributes are
  merged into the existing element; other values are compared whole;
* when an operation makes an element ``primary``, every other element of that
  attribute loses ``primary``;
* replacing a single complex value merges sub-attributes (RFC 7644 3.5.2.3),
  except that a new ``value`` (the manager's id) replaces the whole object, as
  its other sub-attributes described the old one.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from scim2_models.exceptions import InvalidPathException
from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Path,
    PathNode,
    Present,
    ValuePath,
)

from gateway.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    PayloadTooLarge,
)
from gateway.scim.filter import compile_element_filter
from gateway.scim.resource import coerce_value, is_empty, resolve_attribute
from gateway.scim.schema import PATCH_URN, Attribute, Resolved, ResourceType

__all__ = ["OpName", "PatchOp", "apply_patch", "parse_patch"]

OpName = Literal["add", "replace", "remove"]
_OPS: dict[str, OpName] = {"add": "add", "replace": "replace", "remove": "remove"}


@dataclass(frozen=True, slots=True)
class PatchOp:
    """One PATCH operation as sent; ``path`` None means the resource itself."""

    op: OpName
    path: str | None
    value: Any = None


# -- parsing --------------------------------------------------------------------------


def parse_patch(
    body: Mapping[str, Any], *, max_operations: int = 1000, max_path_length: int = 4096
) -> list[PatchOp]:
    """The operations of a PatchOp body; raise a 400 error when it is malformed.

    Member names (``Operations``, ``op``...) and ``op`` values match in any
    case (rule 1). Paths are checked for syntax here, against the schema in
    :func:`apply_patch`. More than ``max_operations`` operations is 413, as for
    a Bulk request over ``maxOperations`` (RFC 7644 3.7.4); a path longer than
    ``max_path_length`` is invalidPath (a path holds a filter, and parsing a long
    one costs as much as a long filter).
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax("The PATCH body must be a JSON object")
    fields = _fold_keys(body)
    _check_schemas(fields.get("schemas"))
    operations = fields.get("operations")
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax("'Operations' must be a non-empty list")
    if len(operations) > max_operations:
        raise PayloadTooLarge(f"a PATCH request may hold at most {max_operations} operations")
    return [
        _parse_operation(raw, index, max_path_length) for index, raw in enumerate(operations, 1)
    ]


def _fold_keys(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key.lower(): value for key, value in obj.items() if isinstance(key, str)}


def _check_schemas(schemas: Any) -> None:
    if isinstance(schemas, str):
        schemas = [schemas]
    if not isinstance(schemas, list) or not any(
        isinstance(urn, str) and urn.strip().lower() == PATCH_URN.lower() for urn in schemas
    ):
        raise InvalidSyntax(f"'schemas' must contain {PATCH_URN}")


def _parse_operation(raw: Any, index: int, max_path_length: int) -> PatchOp:
    if not isinstance(raw, Mapping):
        raise InvalidSyntax(f"Operation {index} must be an object")
    fields = _fold_keys(raw)
    name = fields.get("op")
    op = _OPS.get(name.strip().lower()) if isinstance(name, str) else None
    if op is None:
        raise InvalidSyntax(f"Operation {index}: 'op' must be add, replace or remove")
    path = _parse_op_path(fields.get("path"), index, max_path_length)
    if op == "remove":
        if path is None:
            raise NoTarget(f"Operation {index}: remove needs a path")
        return PatchOp(op, path, fields.get("value"))
    if "value" not in fields:
        raise InvalidValue(f"Operation {index}: {op} needs a value")
    value = fields["value"]
    if path is None and not isinstance(value, Mapping):
        raise InvalidValue(f"Operation {index}: {op} without a path needs an object value")
    return PatchOp(op, path, value)


def _parse_op_path(path: Any, index: int, max_length: int) -> str | None:
    if path is None:
        return None
    if not isinstance(path, str):
        raise InvalidPath(f"Operation {index}: 'path' must be a string")
    if len(path) > max_length:
        raise InvalidPath(f"Operation {index}: the path is longer than {max_length} characters")
    path = path.strip()
    if path:
        _parse_path(path)
    return path or None


def _parse_path(text: str) -> PathNode:
    try:
        node = Path(text).ast
    except (InvalidPathException, ValueError) as exc:
        # scim2-models' detail gives a column, never the path (filters carry values).
        detail = exc.detail if isinstance(exc, InvalidPathException) else "invalid syntax"
        raise InvalidPath(f"The path is not valid: {detail}") from None
    if node is None:
        raise InvalidPath("The path is empty")
    return node


# -- targets --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """What a path designates in a resource of one type."""

    container: str | None  # the extension URN holding it; None for core and common
    attribute: Attribute | None  # None: the container itself (no path, or a schema URN)
    sub: Attribute | None = None
    filter: FilterNode | None = None

    @property
    def label(self) -> str:
        name = self.attribute.name if self.attribute else (self.container or "resource")
        return f"{name}.{self.sub.name}" if self.sub else name

    @property
    def read_only(self) -> bool:
        return self.attribute is not None and (
            self.attribute.read_only or (self.sub is not None and self.sub.read_only)
        )


_ROOT = _Target(None, None)


def _resolve_path(text: str, rtype: ResourceType, container: str | None = None) -> _Target:
    """The target of a path; unqualified names are relative to ``container``."""
    node = _parse_path(text)
    if isinstance(node, Comparison | Present):
        node = _as_value_path(node)
    if isinstance(node, AttrPath):
        return _resolve_attr_path(node, rtype, container)
    attr_path = node.attr_path
    found = resolve_attribute(rtype, attr_path.attr, None, attr_path.uri or container)
    if found is None:
        raise InvalidPath(f"Unknown attribute '{attr_path}'")
    attr = found.attribute
    if attr.type != "complex":
        raise InvalidPath(f"'{attr.name}' has no sub-attributes to filter on")
    sub = None
    if node.sub_attr is not None:
        sub = attr.sub(node.sub_attr)
        if sub is None:
            raise InvalidPath(f"Unknown attribute '{attr.name}.{node.sub_attr}'")
    _check_filter(node.val_filter, attr)
    return _Target(found.container, attr, sub, node.val_filter)


def _as_value_path(node: Comparison | Present) -> ValuePath:
    """Errata 7122: ``emails.type eq "work"`` selects like ``emails[type eq "work"]``."""
    head = AttrPath(node.attr_path.attr, None, node.attr_path.uri)
    inner_path = AttrPath(node.attr_path.sub_attr or "value")
    inner: FilterNode = (
        Present(inner_path)
        if isinstance(node, Present)
        else Comparison(inner_path, node.op, node.value)
    )
    return ValuePath(head, inner)


def _resolve_attr_path(node: AttrPath, rtype: ResourceType, container: str | None) -> _Target:
    if node.uri is not None and node.sub_attr is None:
        # A bare schema URN parses as URI "urn:...:2.0" plus attribute "User".
        urn = f"{node.uri}:{node.attr}"
        if urn.lower() == rtype.schema.id.lower():
            return _ROOT
        ext = rtype.extension(urn)
        if ext is not None:
            return _Target(ext.id, None)
    if node.uri is None and container is None and node.attr.lower() == "schemas":
        raise Mutability("'schemas' is maintained by the service")
    found = resolve_attribute(rtype, node.attr, node.sub_attr, node.uri or container)
    if found is None:
        raise InvalidPath(f"Unknown attribute '{node}'")
    return _Target(found.container, found.attribute, found.sub)


_EQUALITY = (CompareOperator.eq, CompareOperator.ne)


def _check_filter(node: FilterNode, attr: Attribute) -> None:
    """Every name in a value filter must be a sub-attribute of ``attr``."""
    if isinstance(node, LogicalExpr):
        for term in node.terms:
            _check_filter(term, attr)
    elif isinstance(node, Not):
        _check_filter(node.expr, attr)
    elif isinstance(node, Comparison):
        sub = _filter_sub(node.attr_path, attr)
        if sub.type == "boolean" and node.op not in _EQUALITY:
            raise InvalidFilter(f"Only eq and ne can compare the boolean '{sub.name}'")
    elif isinstance(node, Present):
        _filter_sub(node.attr_path, attr)
    else:
        raise InvalidPath("Value filters cannot be nested")


def _filter_sub(path: AttrPath, attr: Attribute) -> Attribute:
    sub = attr.sub(path.attr) if path.uri is None and path.sub_attr is None else None
    if sub is None:
        raise InvalidPath(f"'{attr.name}' has no sub-attribute '{path}'")
    return sub


# -- applying -------------------------------------------------------------------------


def apply_patch(
    resource: Mapping[str, Any], ops: Sequence[PatchOp], rtype: ResourceType
) -> dict[str, Any]:
    """A new resource with ``ops`` applied in order; ``resource`` is never modified.

    Any failing operation raises and nothing is applied (RFC 7644 3.5.2). The
    result is canonical: no nulls, empty strings, lists or objects. Required
    attributes are not checked here (see :func:`check_required`).
    """
    result = copy.deepcopy(dict(resource))
    for op in ops:
        target = _ROOT if not op.path else _resolve_path(op.path, rtype)
        _apply(result, op.op, target, op.value, rtype, from_path=True)
    compacted: dict[str, Any] = _compact(result)
    return compacted


def _apply(
    result: dict[str, Any],
    op: OpName,
    target: _Target,
    value: Any,
    rtype: ResourceType,
    *,
    from_path: bool,
) -> None:
    if target.attribute is None:
        _apply_to_container(result, op, target.container, value, rtype)
        return
    if target.read_only:
        if not from_path:
            return  # rule 3: read-only keys of a path-less value object are ignored
        raise Mutability(f"Attribute '{target.label}' is read-only")
    if target.filter is not None:
        _apply_filtered(result, op, target, value)
    elif target.sub is not None:
        _apply_sub(result, op, target, value)
    else:
        _apply_attribute(result, op, target, value)


def _apply_to_container(
    result: dict[str, Any], op: OpName, container: str | None, value: Any, rtype: ResourceType
) -> None:
    """A path-less operation, or one on a bare schema URN: each key is its own target."""
    if container is not None and (op == "remove" or (op == "replace" and is_empty(value))):
        result.pop(container, None)
        return
    if op == "remove":
        raise NoTarget("The whole resource cannot be removed")
    if is_empty(value):
        return
    if not isinstance(value, Mapping):
        raise InvalidValue(f"'{container or 'resource'}' must be given an object")
    for key, item in value.items():
        target = _key_target(key, container, rtype)
        if target is not None:
            _apply(result, op, target, item, rtype, from_path=False)


def _key_target(key: Any, container: str | None, rtype: ResourceType) -> _Target | None:
    """The target of one key of a path-less value; None for keys that are ignored.

    Keys may be plain, dotted, URN-qualified or even value paths (Entra folds
    ``emails[type eq "work"].value`` into one replace). Unknown ones are
    ignored, as in a POST body (rule 10).
    """
    if not isinstance(key, str) or key.strip().lower() == "schemas":
        return None
    try:
        return _resolve_path(key.strip(), rtype, container)
    except (InvalidPath, InvalidFilter):
        return None


def _holder(result: dict[str, Any], container: str | None) -> dict[str, Any]:
    if container is None:
        return result
    holder = result.get(container)
    if not isinstance(holder, dict):
        holder = result[container] = {}
    return holder


# -- a whole attribute


def _apply_attribute(result: dict[str, Any], op: OpName, target: _Target, value: Any) -> None:
    attr = _attribute(target)
    holder = _holder(result, target.container)
    if op == "remove":
        _remove_attribute(holder, attr, value)
        return
    new = coerce_value(attr, value, label=target.label)
    if new is None:
        if op == "replace":
            _remove_attribute(holder, attr, None)
        return
    old = holder.get(attr.name)
    if attr.multi_valued:
        if op == "replace":
            holder[attr.name] = new
            touched = new
        else:
            touched = _append(holder, attr, new)
        _settle_primary(holder[attr.name], touched)
    elif attr.type == "complex":
        holder[attr.name] = _merge_complex(attr, old, new, target.label)
    else:
        _guard_immutable(attr, old, new, target.label)
        holder[attr.name] = new


def _attribute(target: _Target) -> Attribute:
    assert target.attribute is not None  # container targets never get this far
    return target.attribute


def _remove_attribute(holder: dict[str, Any], attr: Attribute, value: Any) -> None:
    """Remove the attribute, or with a value list (rule 6) only the listed values."""
    old = holder.get(attr.name)
    if old is None:
        return
    if attr.multi_valued and value is not None:
        # Even a list that lists nothing removes only what it lists: emptying a
        # group by accident is the classic failure of Entra's member removal.
        listed = coerce_value(attr, value) or []
        holder[attr.name] = [e for e in _values(old) if not _listed(attr, e, listed)]
        return
    if attr.type == "complex" and not is_empty(value):
        listed = [c for item in _values(value) if (c := coerce_value(attr, item)) is not None]
        if _listed(attr, old, listed):
            del holder[attr.name]
        return
    _guard_immutable(attr, old, None, attr.name)
    del holder[attr.name]


def _listed(attr: Attribute, element: Any, listed: list[Any]) -> bool:
    return any(_same_value(attr, element, item) for item in listed)


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _append(holder: dict[str, Any], attr: Attribute, new: list[Any]) -> list[Any]:
    """Add values not already there (RFC 7644 3.5.2.1, rule 7); return those touched."""
    current = holder.get(attr.name)
    if not isinstance(current, list):
        current = holder[attr.name] = []
    touched: list[Any] = []
    for item in new:
        existing = next((e for e in current if _same_value(attr, e, item)), None)
        if existing is None:
            current.append(item)
            touched.append(item)
        elif isinstance(existing, dict) and isinstance(item, dict):
            _fill(attr, existing, item)
            touched.append(existing)
    return touched


def _same_value(attr: Attribute, a: Any, b: Any) -> bool:
    """Whether two values of ``attr`` are the same value (see the module notes)."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return bool(a == b)
    value_attr = attr.sub("value")
    if value_attr is None or "value" not in a or "value" not in b:
        return a == b
    if not _equal(value_attr, a["value"], b["value"]):
        return False
    type_attr = attr.sub("type")
    if type_attr is None or "type" not in a or "type" not in b:
        return True
    return _equal(type_attr, a["type"], b["type"])


def _equal(attr: Attribute, a: Any, b: Any) -> bool:
    if not attr.case_exact and isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return bool(a == b)


def _fill(attr: Attribute, existing: dict[str, Any], item: Mapping[str, Any]) -> None:
    """Merge a repeated value into the one already there, keeping its immutable parts."""
    for key, value in item.items():
        sub = attr.sub(key)
        if sub is not None and sub.mutability == "immutable" and key in existing:
            continue
        existing[key] = value


def _merge_complex(attr: Attribute, old: Any, new: dict[str, Any], label: str) -> dict[str, Any]:
    if not isinstance(old, dict):
        return new
    value_attr = attr.sub("value")
    if value_attr and "value" in new and not _equal(value_attr, old.get("value"), new["value"]):
        return new
    for key, value in new.items():
        sub = attr.sub(key)
        if sub is not None:
            _guard_immutable(sub, old.get(key), value, f"{label}.{sub.name}")
    return {**old, **new}


def _guard_immutable(attr: Attribute, old: Any, new: Any, label: str) -> None:
    """Immutable values may be set once, never changed in place (RFC 7643 2.2)."""
    if attr.mutability == "immutable" and not is_empty(old) and old != new:
        raise Mutability(f"Attribute '{label}' is immutable")


def _settle_primary(elements: list[Any], touched: Sequence[Any]) -> None:
    """RFC 7644 3.5.2: a value made primary takes ``primary`` from all others."""
    chosen = next(
        (e for e in reversed(touched) if isinstance(e, dict) and e.get("primary") is True), None
    )
    if chosen is None:
        return
    for element in elements:
        if element is not chosen and isinstance(element, dict) and element.get("primary") is True:
            element["primary"] = False


# -- a sub-attribute of every value


def _apply_sub(result: dict[str, Any], op: OpName, target: _Target, value: Any) -> None:
    attr, sub = _attribute(target), _sub(target)
    holder = _holder(result, target.container)
    new = None if op == "remove" else coerce_value(sub, value, label=target.label)
    if new is None:
        if op != "add":
            _remove_sub(_elements(holder.get(attr.name)), sub, target.label)
        return
    if not attr.multi_valued:
        holder[attr.name] = _merge_complex(attr, holder.get(attr.name), {sub.name: new}, attr.name)
        return
    elements = holder.get(attr.name)
    if not isinstance(elements, list) or not elements:
        elements = holder[attr.name] = [{}]
    for element in _elements(elements):
        _guard_immutable(sub, element.get(sub.name), new, target.label)
        element[sub.name] = new
    _settle_primary(elements, elements)


def _sub(target: _Target) -> Attribute:
    assert target.sub is not None  # only called for sub-attribute targets
    return target.sub


def _elements(value: Any) -> list[dict[str, Any]]:
    """The complex values an attribute holds; a single complex value is a list of one."""
    return [e for e in _values(value) if isinstance(e, dict)] if value is not None else []


def _remove_sub(elements: list[dict[str, Any]], sub: Attribute, label: str) -> None:
    for element in elements:
        _guard_immutable(sub, element.get(sub.name), None, label)
        element.pop(sub.name, None)


# -- values selected by a filter


def _apply_filtered(result: dict[str, Any], op: OpName, target: _Target, value: Any) -> None:
    attr = _attribute(target)
    flt = target.filter
    assert flt is not None  # only called for filtered targets
    holder = _holder(result, target.container)
    test = compile_element_filter(flt, Resolved(None, attr))
    matched = [e for e in _elements(holder.get(attr.name)) if test(e)]
    new = None if op == "remove" else _filtered_value(target, value)
    if new is None:
        if op != "add":
            _remove_matched(holder, target, matched)
        return
    if not matched:
        matched = [_create_element(holder, attr, flt, target.label)]
    for element in matched:
        _write_element(element, op, target, new)
    if attr.multi_valued:
        _settle_primary(holder[attr.name], matched)


def _filtered_value(target: _Target, value: Any) -> Any:
    """The coerced value for a filtered target: a sub-attribute value or one element."""
    if target.sub is not None:
        return coerce_value(target.sub, value, label=target.label)
    attr = _attribute(target)
    new = coerce_value(attr, value, label=target.label)
    if attr.multi_valued and new is not None:
        if len(new) != 1:
            raise InvalidValue(f"Attribute '{target.label}' must be given a single value")
        return new[0]
    return new


def _remove_matched(holder: dict[str, Any], target: _Target, matched: list[Any]) -> None:
    attr = _attribute(target)
    if not matched:
        return  # rule 5: removing what is not there is no error
    if target.sub is not None:
        _remove_sub(matched, target.sub, target.label)
    elif attr.multi_valued:
        holder[attr.name] = [e for e in holder[attr.name] if not any(e is m for m in matched)]
    else:
        del holder[attr.name]


def _create_element(
    holder: dict[str, Any], attr: Attribute, flt: FilterNode, label: str
) -> dict[str, Any]:
    """Rule 5: a filter that matches nothing describes the element to create."""
    element = _filter_values(flt, attr)
    if not element:
        raise NoTarget(f"No value of '{label}' matches the filter")
    if attr.multi_valued:
        elements = holder.get(attr.name)
        if not isinstance(elements, list):
            elements = holder[attr.name] = []
        elements.append(element)
    else:
        holder[attr.name] = element
    return element


def _filter_values(flt: FilterNode, attr: Attribute) -> dict[str, Any]:
    """The sub-attribute values an ``eq`` filter (or an ``and`` of them) pins down."""
    terms = flt.terms if isinstance(flt, LogicalExpr) and flt.op is LogicalOperator.and_ else ()
    values: dict[str, Any] = {}
    for term in terms or (flt,):
        if isinstance(term, Comparison) and term.op is CompareOperator.eq:
            sub = _filter_sub(term.attr_path, attr)
            coerced = coerce_value(sub, term.value, label=f"{attr.name}.{sub.name}")
            if coerced is not None:
                values[sub.name] = coerced
    return values


def _write_element(element: dict[str, Any], op: OpName, target: _Target, new: Any) -> None:
    attr, label = _attribute(target), target.label
    if target.sub is not None:
        _guard_immutable(target.sub, element.get(target.sub.name), new, label)
        element[target.sub.name] = new
        return
    for key, value in new.items():
        known = attr.sub(key)
        if known is not None:
            _guard_immutable(known, element.get(key), value, f"{label}.{known.name}")
    if op == "replace":
        assert target.filter is not None
        # The element is replaced whole, but keeps what the filter selected it by
        # (so the next operation on the same path finds it again) and the
        # immutable values it already had, which no replace may take away.
        kept = {
            key: value
            for key, value in element.items()
            if (known := attr.sub(key)) is not None and known.mutability == "immutable"
        }
        new = {**_filter_values(target.filter, attr), **kept, **new}
        element.clear()
    element.update(new)


# -- canonical form -------------------------------------------------------------------


def _compact(value: Any) -> Any:
    """Drop nulls, empty strings and emptied lists and objects, at any depth."""
    if isinstance(value, dict):
        return {k: c for k, v in value.items() if not is_empty(c := _compact(v))}
    if isinstance(value, list):
        return [c for v in value if not is_empty(c := _compact(v))]
    return value
