"""Resource bodies: canonical form on the way in, projection on the way out.

A resource is plain JSON data: core and common attributes (``id``,
``externalId``, ``meta``) at the top level under their canonical names,
extension attributes in an object under the canonical extension URN, and a
``schemas`` list the service maintains.

:func:`normalize_resource` turns a POST/PUT body into that form, following
the IdP rules in ``IDP-RULES.md``: names match in any case, read-only and
unknown attributes are dropped rather than rejected, ``null`` and ``""`` mean
"not provided". :func:`project` applies ``attributes`` /
``excludedAttributes`` and the ``returned`` characteristic to a resource on
the way out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from gateway.errors import InvalidValue
from gateway.scim.schema import Attribute, Resolved, ResourceType, Schema

__all__ = [
    "check_required",
    "coerce_value",
    "is_empty",
    "lookup_key",
    "normalize_resource",
    "project",
    "resolve_attribute",
    "strip_never",
]

_BOOLEANS = {"true": True, "false": False}
_TEXT_TYPES = frozenset({"string", "reference", "binary"})


# -- names ----------------------------------------------------------------------------


def resolve_attribute(
    rtype: ResourceType, attr: str, sub: str | None = None, uri: str | None = None
) -> Resolved | None:
    """Like :meth:`ResourceType.resolve`, also finding unqualified extension attributes.

    IdPs name enterprise attributes without their URN (Entra removes the
    manager with ``manager[value eq "id"]``), and no core attribute shares a
    name with one, so an unqualified name the core schema lacks is looked up
    in the extensions.
    """
    found = rtype.resolve(attr, sub, uri)
    if found is not None or uri is not None:
        return found
    for ext, _required in rtype.extensions:
        found = rtype.resolve(attr, sub, ext.id)
        if found is not None:
            return found
    return None


#: A type keeps at most this many resolved body keys (a client can send any number).
_MAX_CACHED_KEYS = 512


def lookup_key(rtype: ResourceType, key: str) -> Resolved | Schema | None:
    """Resolve a body key: plain, dotted, URN-qualified, or a bare schema URN.

    The core schema URN itself resolves to the core :class:`Schema`. Resource
    types do not change once built, so each answer is kept for the next body.
    """
    table = rtype.resolved_keys
    try:
        return table[key]
    except KeyError:
        found = table[key] = _lookup_key(rtype, key)
        if len(table) > _MAX_CACHED_KEYS:
            del table[key]
        return found


def _lookup_key(rtype: ResourceType, key: str) -> Resolved | Schema | None:
    key = key.strip()
    if key.lower() == rtype.schema.id.lower():
        return rtype.schema
    found = rtype.lookup(key)
    if found is None and not key.lower().startswith("urn:"):
        attr, _, sub = key.partition(".")
        return resolve_attribute(rtype, attr, sub or None)
    return found


def is_empty(value: Any) -> bool:
    """Null, ``""``, ``[]`` and ``{}`` all mean unassigned (RFC 7643 2.5)."""
    return value is None or (isinstance(value, str | list | dict) and not value)


# -- coercion -------------------------------------------------------------------------


def coerce_value(attr: Attribute, value: Any, *, label: str | None = None) -> Any:
    """``value`` as the canonical JSON for ``attr``; None when it amounts to nothing.

    Null, ``""`` and values left empty once their unknown, read-only and null
    parts are dropped all give None. Multi-valued attributes always give a
    list (a single value is wrapped) with at most one ``primary`` element.
    ``label`` names the attribute in error details (default: ``attr.name``);
    details never carry the value.
    """
    name = label or attr.name
    if attr.multi_valued:
        return _coerce_multi(attr, value, name)
    return _coerce_single(attr, value, name)


def _coerce_multi(attr: Attribute, value: Any, name: str) -> list[Any] | None:
    if attr.type == "complex":
        value = _decode_json_text(value, name)
    items = value if isinstance(value, list) else [value]
    out = [c for item in items if (c := _coerce_single(attr, item, name)) is not None]
    if not out:
        return None
    if attr.type == "complex":
        _keep_last_primary(out)
    return out


def _coerce_single(attr: Attribute, value: Any, name: str) -> Any:
    if value is None or value == "":
        return None
    if attr.type == "complex":
        return _coerce_complex(attr, value, name)
    return _coerce_simple(attr, value, name)


def _decode_json_text(value: Any, name: str) -> Any:
    """IdP rule 9: a complex value (``roles``) may arrive as JSON text."""
    if not isinstance(value, str) or value.lstrip()[:1] not in ("[", "{"):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise InvalidValue(f"Attribute '{name}' holds malformed JSON text") from None


def _coerce_complex(attr: Attribute, value: Any, name: str) -> dict[str, Any] | None:
    value = _decode_json_text(value, name)
    if isinstance(value, list) and not attr.multi_valued:
        # IdP rule 8: a manager may come as a list of {$ref, value}; the first one counts.
        value = next((item for item in value if not is_empty(item)), None)
        if value is None:
            return None
    if not isinstance(value, Mapping):
        value = _wrap_scalar(attr, value, name)
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None or sub.read_only:
            continue
        coerced = coerce_value(sub, item, label=f"{name}.{sub.name}")
        if coerced is not None:
            out[sub.name] = coerced
    return out or None


def _wrap_scalar(attr: Attribute, value: Any, name: str) -> Mapping[str, Any]:
    """A plain value of a complex attribute is its ``value`` sub-attribute (RFC 7643 2.4).

    That is how Entra sends the manager (IdP rule 8) and how role names come.
    """
    if attr.sub("value") is not None and isinstance(value, str | int | float | bool):
        return {"value": value}
    raise InvalidValue(f"Attribute '{name}' must be an object")


def _keep_last_primary(elements: list[Any]) -> None:
    """RFC 7643 2.4: at most one ``primary`` value; the last one given wins."""
    primaries = [e for e in elements if isinstance(e, dict) and e.get("primary") is True]
    for element in primaries[:-1]:
        element["primary"] = False


def _to_boolean(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _BOOLEANS.get(value.strip().lower())
    return None


def _to_integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _to_decimal(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return None


def _to_datetime(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return value.strip()


def _to_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _to_string(value: Any) -> str | None:
    """Lenient: IdP mappings send numbers (and the odd boolean) for string attributes."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _to_text(value)


_SIMPLE: dict[str, Callable[[Any], Any]] = {
    "boolean": _to_boolean,
    "integer": _to_integer,
    "decimal": _to_decimal,
    "dateTime": _to_datetime,
    "string": _to_string,
}


def _coerce_simple(attr: Attribute, value: Any, name: str) -> Any:
    if isinstance(value, Mapping | list):
        raise InvalidValue(f"Attribute '{name}' must be a single {attr.type} value")
    coerce: Callable[[Any], Any] = _SIMPLE.get(attr.type, _to_text)
    result = coerce(value)
    if result is None:
        raise InvalidValue(f"Attribute '{name}' must be of type {attr.type}")
    return result


# -- normalisation --------------------------------------------------------------------


def normalize_resource(body: Mapping[str, Any], rtype: ResourceType) -> dict[str, Any]:
    """An incoming POST/PUT body in canonical form.

    Read-only attributes (``id``, ``meta``, ``groups``, ...) and ``schemas``
    are dropped (IdP rule 11), unknown attributes and URNs ignored (rule 10),
    null and ``""`` mean "not provided". Wrong types raise
    :class:`InvalidValue`.
    """
    out: dict[str, Any] = {}
    _normalize_object(out, body, rtype, container=None)
    return out


def _normalize_object(
    out: dict[str, Any], body: Mapping[str, Any], rtype: ResourceType, container: str | None
) -> None:
    for key, value in body.items():
        if not isinstance(key, str) or key.strip().lower() == "schemas":
            continue
        target = _body_target(rtype, key, container)
        if isinstance(target, Schema):
            _normalize_schema_object(out, target, value, rtype)
        elif target is not None:
            _put(out, target, value)


def _body_target(rtype: ResourceType, key: str, container: str | None) -> Resolved | Schema | None:
    """Keys inside an extension object are relative to it unless URN-qualified."""
    if container is None or key.strip().lower().startswith("urn:"):
        return lookup_key(rtype, key)
    attr, _, sub = key.strip().partition(".")
    return rtype.resolve(attr, sub or None, container)


def _normalize_schema_object(
    out: dict[str, Any], schema: Schema, value: Any, rtype: ResourceType
) -> None:
    if is_empty(value):
        return
    if not isinstance(value, Mapping):
        raise InvalidValue(f"Attribute '{schema.id}' must be an object")
    container = None if schema is rtype.schema else schema.id
    _normalize_object(out, value, rtype, container)


def _put(out: dict[str, Any], target: Resolved, value: Any) -> None:
    attr, sub = target.attribute, target.sub
    if attr.read_only or (sub is not None and sub.read_only):
        return
    coerced = coerce_value(target.target, value, label=target.dotted)
    if coerced is None:
        return
    holder = out if target.container is None else out.setdefault(target.container, {})
    if sub is None:
        old = holder.get(attr.name)
        # A dotted key ("name.givenName") may have come before the object itself.
        holder[attr.name] = {**old, **coerced} if isinstance(old, dict) else coerced
    elif attr.multi_valued:
        elements = holder.setdefault(attr.name, [])
        if not elements:
            elements.append({})
        for element in elements:
            element[sub.name] = coerced
    else:
        holder.setdefault(attr.name, {})[sub.name] = coerced


# -- required attributes --------------------------------------------------------------


def check_required(resource: Mapping[str, Any], rtype: ResourceType) -> None:
    """Raise :class:`InvalidValue` naming the first required attribute that is missing."""
    for container, attr in rtype.attributes():
        if not attr.required or attr.read_only:
            continue
        holder = resource if container is None else resource.get(container)
        value = holder.get(attr.name) if isinstance(holder, Mapping) else None
        if is_empty(value):
            raise InvalidValue(f"Attribute '{attr.name}' is required")


# -- projection -----------------------------------------------------------------------

# How much of one attribute's value a response keeps: None for all of it, else
# the names of the sub-attributes kept. An attribute absent from a plan is dropped.
_Rule = frozenset[str] | None


@dataclass(frozen=True, slots=True)
class _Plan:
    rules: Mapping[str | None, Mapping[str, _Rule]]  # container (None: top level) -> name -> rule
    known: Mapping[str | None, frozenset[str]]  # every name the schema defines, per container
    extensions: tuple[str, ...]
    keep_unknown: bool  # names the schema does not define stay unless attributes were listed


class _Drop:
    """What :func:`_rule` answers for an attribute a response leaves out."""


_DROP = _Drop()

_Ref = tuple[str | None, str | None, str | None]  # (container, attribute, sub-attribute)


class _Identity:
    """A ResourceType cache key: it holds dicts, so it cannot be hashed by value."""

    __slots__ = ("rtype",)

    def __init__(self, rtype: ResourceType) -> None:
        self.rtype = rtype

    def __hash__(self) -> int:
        return id(self.rtype)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.rtype is self.rtype


def project(
    resource: Mapping[str, Any],
    rtype: ResourceType,
    attributes: Sequence[str] = (),
    excluded: Sequence[str] = (),
) -> dict[str, Any]:
    """The resource as a response shows it (RFC 7644 3.4.2.5 and 3.9).

    ``returned: always`` attributes (and ``schemas``) are always kept,
    ``never`` ones (``password``) never, ``request`` ones only when named in
    ``attributes``. Names may be plain, dotted, URN-qualified or a bare
    extension URN, in any case; unknown names are ignored. When both lists
    are given, ``excluded`` applies to what ``attributes`` selected.

    The result is a new top-level dict, but values the projection does not
    cut are shared with ``resource``: treat it as read-only.
    """
    plan = _cached_plan(_Identity(rtype), tuple(attributes), tuple(excluded))
    if plan is None:
        return dict(resource)
    return _apply_plan(resource, plan)


def shown(
    rtype: ResourceType, name: str, attributes: Sequence[str] = (), excluded: Sequence[str] = ()
) -> bool:
    """Whether a response projected by ``attributes``/``excluded`` shows the core attribute
    ``name`` at all (so the service can tell an adapter not to read it)."""
    plan = _cached_plan(_Identity(rtype), tuple(attributes), tuple(excluded))
    return plan is None or name in plan.rules.get(None, {})


def strip_never(resource: Mapping[str, Any], rtype: ResourceType) -> dict[str, Any]:
    """The resource with its default attributes only: no ``password``, no ``request`` ones."""
    return project(resource, rtype)


@lru_cache(maxsize=512)
def _cached_plan(
    key: _Identity, attributes: tuple[str, ...], excluded: tuple[str, ...]
) -> _Plan | None:
    rtype = key.rtype
    if not attributes and not excluded and not _hides_anything(rtype):
        return None
    wanted = _refs(rtype, attributes) if attributes else None
    unwanted = _refs(rtype, excluded)
    rules: dict[str | None, dict[str, _Rule]] = {None: {"schemas": None}}
    known: dict[str | None, set[str]] = {None: {"schemas"}}
    extensions = tuple(ext.id for ext, _ in rtype.extensions)
    known[None].update(extensions)
    for container, attr in rtype.attributes():
        known.setdefault(container, set()).add(attr.name)
        rule = _rule(container, attr, wanted, unwanted)
        if not isinstance(rule, _Drop):
            rules.setdefault(container, {})[attr.name] = rule
    return _Plan(
        rules=rules,
        known={c: frozenset(names) for c, names in known.items()},
        extensions=extensions,
        keep_unknown=wanted is None,
    )


def _hides_anything(rtype: ResourceType) -> bool:
    hidden = ("never", "request")
    return any(
        attr.returned in hidden or any(s.returned in hidden for s in attr.sub_attributes.values())
        for _, attr in rtype.attributes()
    )


def _refs(rtype: ResourceType, names: Sequence[str]) -> frozenset[_Ref]:
    refs: set[_Ref] = set()
    for name in names:
        found = lookup_key(rtype, name) if name.strip() else None
        if isinstance(found, Schema) and found is not rtype.schema:
            refs.add((found.id, None, None))
        elif isinstance(found, Resolved):
            sub = found.sub.name if found.sub else None
            refs.add((found.container, found.attribute.name, sub))
    return frozenset(refs)


def _rule(
    container: str | None,
    attr: Attribute,
    wanted: frozenset[_Ref] | None,
    unwanted: frozenset[_Ref],
) -> _Rule | _Drop:
    """What a response keeps of ``attr``."""
    if attr.returned == "never":
        return _DROP
    always = attr.returned == "always"
    whole = (container, attr.name, None)
    if not always and (whole in unwanted or (container, None, None) in unwanted):
        return _DROP
    subs = attr.sub_attributes.values()
    if wanted is None:
        if attr.returned == "request":
            return _DROP
        kept = {s.name for s in subs if s.returned not in ("never", "request")}
    elif always or whole in wanted or (container, None, None) in wanted:
        kept = {s.name for s in subs if s.returned != "never"}
    else:
        asked = {s for c, a, s in wanted if c == container and a == attr.name and s}
        if not asked:
            return _DROP
        kept = {s.name for s in subs if s.name in asked and s.returned != "never"}
    kept -= {s for c, a, s in unwanted if c == container and a == attr.name and s}
    kept |= {s.name for s in subs if s.returned == "always"}
    return None if len(kept) == len(attr.sub_attributes) else frozenset(kept)


def _apply_plan(resource: Mapping[str, Any], plan: _Plan) -> dict[str, Any]:
    out = _cut_object(resource, plan, None)
    for container in plan.extensions:
        value = resource.get(container)
        if isinstance(value, Mapping) and (cut := _cut_object(value, plan, container)):
            out[container] = cut
    return out


def _cut_object(obj: Mapping[str, Any], plan: _Plan, container: str | None) -> dict[str, Any]:
    rules = plan.rules.get(container, {})
    known = plan.known.get(container, frozenset())
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key in rules:
            cut = _cut_value(value, rules[key])
            if not is_empty(cut):
                out[key] = cut
        elif plan.keep_unknown and key not in known:
            out[key] = value
    return out


def _cut_value(value: Any, rule: _Rule) -> Any:
    if rule is None:
        return value
    if isinstance(value, list):
        return [c for item in value if (c := _cut_value(item, rule))]
    if isinstance(value, Mapping):
        return {k: v for k, v in value.items() if k in rule}
    return value
