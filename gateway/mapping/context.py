"""What a mapping template sees: SCIM attributes (to_legacy) or the legacy ``record`` (from_legacy).

to_legacy templates get every attribute of the resource type as a variable,
``None`` when the resource lacks it, so a template may name any attribute but
a misspelt one fails (strict undefined). Complex values are
:class:`AttrObject`: every sub-attribute is present, ``None`` when absent.
Multi-valued attributes are lists, empty when absent. Extensions are under
``extensions["urn:..."]``, and the Enterprise User one also as ``enterprise``.

from_legacy templates get ``record``, a :class:`LegacyRecord`: a missing field
is ``None`` (legacy apps leave fields out), unless the mapping lists its
``record_fields``, in which case naming any other field is an error.

Templates of both directions also get ``vars``, the file's ``vars:`` section
(:class:`Variables`): naming a variable the file does not define is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from jinja2.exceptions import UndefinedError

from gateway.scim.schema import ENTERPRISE_URN, Attribute, ResourceType

__all__ = [
    "NOT_MAPPED",
    "AttrObject",
    "LegacyRecord",
    "Variables",
    "attribute_variables",
    "did_you_mean",
    "sample_resource",
    "scim_variables",
    "scim_variables_of",
]

#: Set by the gateway or carried as member deltas, never through a mapping.
NOT_MAPPED = frozenset({"id", "meta", "schemas", "members", "groups"})
_SCALARS = frozenset({str, int, float, bool})


def did_you_mean(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    if not close:
        close = [c for c in candidates if c.lower() == name.lower()][:1]
    return f"; did you mean {close[0]!r}?" if close else ""


class AttrObject(dict[str, Any]):
    """A complex SCIM value: every sub-attribute is a key (None when absent).

    Naming a sub-attribute the schema lacks raises at once, with a hint, so
    ``name.givnName`` fails the start-up check. It is false when every
    sub-attribute is None, so ``{% if manager %}`` reads naturally.
    """

    __slots__ = ("_label", "_what")

    def __init__(self, label: str, items: Mapping[str, Any], what: str = "sub-attribute") -> None:
        dict.__init__(self, items)
        self._label = label
        self._what = what

    def __missing__(self, key: object) -> Any:
        hint = did_you_mean(key, list(self)) if isinstance(key, str) else ""
        raise UndefinedError(f"{self._label} has no {self._what} {key!r}{hint}")

    def __bool__(self) -> bool:
        return any(v is not None for v in self.values())


def _wrap(value: Any) -> Any:
    if value is None or type(value) in _SCALARS:
        return value
    if type(value) is dict:  # JSON objects and lists first: the same answers, sooner
        return LegacyRecord(value)
    if type(value) is list:
        return [_wrap(v) for v in value]
    if isinstance(value, Mapping) and not isinstance(value, LegacyRecord):
        return LegacyRecord(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class LegacyRecord:
    """A legacy record in a from_legacy template: ``record.login`` or ``record["login"]``.

    Only field access: it has no methods, so a field called ``items`` or
    ``keys`` is just a field. Nested objects are records too.
    """

    __slots__ = ("_data", "_known")

    def __init__(self, data: Mapping[str, Any], known: Collection[str] | None = None) -> None:
        self._data = data
        self._known = known

    def __getitem__(self, key: str) -> Any:
        if not isinstance(key, str):
            raise KeyError(key)
        data = self._data
        if key in data:
            value = data[key]
            if value is None or type(value) in _SCALARS:  # _wrap's first case, without a call
                return value
            return _wrap(value)
        if self._known is not None and key not in self._known:
            hint = did_you_mean(key, self._known)
            raise UndefinedError(f"record has no field {key!r} (not in record_fields){hint}")
        return None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __bool__(self) -> bool:
        return bool(self._data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)


def field_or_none(record: LegacyRecord, key: str) -> Any:
    """``record[key] if key in record else None`` (no error for a field not in
    record_fields), in one call: filters look fields up in every element of a list."""
    data = record._data
    if key in data:
        return _wrap(data[key])
    return None


class Variables(LegacyRecord):
    """A mapping file's ``vars:`` in a template: ``vars.name`` or ``vars["name"]``.

    Only the variables the file defines: any other name fails, with a hint.
    """

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if isinstance(key, str) and key not in self._data:
            hint = did_you_mean(key, list(self._data))
            raise UndefinedError(f"vars has no variable {key!r}{hint}")
        return super().__getitem__(key)


def _by_lower(data: Any) -> dict[str, Any]:
    if type(data) is not dict and not isinstance(data, Mapping):
        return {}
    return {k.lower(): v for k, v in data.items() if isinstance(k, str)}


def _complex(attr: Attribute, value: Any, label: str) -> AttrObject:
    if value is not None and not isinstance(value, Mapping) and attr.sub("value") is not None:
        value = {"value": value}
    data = _by_lower(value)
    return AttrObject(label, {s.name: data.get(k) for k, s in attr.sub_attributes.items()})


def _variable(attr: Attribute, value: Any, label: str) -> Any:
    if attr.multi_valued:
        if value is None:
            return []
        items = value if isinstance(value, list) else [value]
        if attr.type != "complex":
            return list(items)
        return [_complex(attr, item, label) for item in items if item is not None]
    if attr.type == "complex":
        return _complex(attr, value, label)
    return value


def attribute_variables(rtype: ResourceType) -> dict[str, Attribute]:
    """The top-level attributes a to_legacy template may name, by canonical name."""
    return {
        attr.name: attr
        for container, attr in rtype.attributes()
        if container is None and attr.name not in NOT_MAPPED
    }


_Maker = Callable[[Any], Any] | None


def _maker(attr: Attribute, label: str) -> _Maker:
    """``_variable(attr, value, label)`` as a function of ``value``; None for ``value`` itself.

    What ``_variable`` and ``_complex`` work out from the attribute on each call
    (its kind, its sub-attributes) is worked out once: to_legacy runs on every write.
    """
    if attr.type == "complex":
        names = tuple(sub.name for sub in attr.sub_attributes.values())
        by_lower = {key: sub.name for key, sub in attr.sub_attributes.items()}
        by_name = {name: name for name in names}  # keys spelt canonically, as most are
        valued = attr.sub("value") is not None
        nothing = dict.fromkeys(names)  # copied into each AttrObject, then filled in

        def complex_value(value: Any) -> AttrObject:
            # _complex: every sub-attribute, each the value of the last key naming it in
            # any case; keys naming none are left out.
            if type(value) is not dict:
                if value is not None and valued and not isinstance(value, Mapping):
                    value = {"value": value}
                elif not isinstance(value, Mapping):
                    return AttrObject(label, nothing)
            found = AttrObject(label, nothing)
            for key, item in value.items():
                if type(key) is str:
                    name = by_name.get(key) or by_lower.get(key.lower())
                elif isinstance(key, str):
                    name = by_lower.get(key.lower())
                else:
                    continue
                if name is not None:
                    found[name] = item  # dict's own __setitem__: the key is in already
            return found

        if not attr.multi_valued:
            return complex_value

        def complex_values(value: Any) -> list[AttrObject]:
            if value is None:
                return []
            items = value if isinstance(value, list) else [value]
            return [complex_value(item) for item in items if item is not None]

        return complex_values
    if attr.multi_valued:

        def values(value: Any) -> list[Any]:
            if value is None:
                return []
            return list(value) if isinstance(value, list) else [value]

        return values
    return None


class _Plan:
    """What :func:`scim_variables` needs of a resource type, worked out once: each
    attribute by lower-case name with the function making its variable, the variable
    of an absent attribute, and which of those are lists (made afresh per render)."""

    __slots__ = ("attrs", "empty", "extensions", "lists", "rtype")

    def __init__(self, rtype: ResourceType) -> None:
        self.rtype = rtype  # kept alive while its id is a key of _PLANS
        named = attribute_variables(rtype)
        self.attrs = {name.lower(): (name, _maker(attr, name)) for name, attr in named.items()}
        self.empty = {name: _variable(attr, None, name) for name, attr in named.items()}
        self.lists = tuple(name for name, value in self.empty.items() if type(value) is list)
        self.extensions = [
            (
                ext.id,
                ext.id.lower(),
                "the enterprise extension" if ext.id == ENTERPRISE_URN else ext.id,
                tuple((key, a.name, _maker(a, a.name)) for key, a in ext.attributes.items()),
            )
            for ext, _required in rtype.extensions
        ]


_PLANS: dict[int, _Plan] = {}


def _plan(rtype: ResourceType) -> _Plan:
    found = _PLANS.get(id(rtype))
    if found is None or found.rtype is not rtype:
        if len(_PLANS) >= 256:  # resource types are made once per app; tests make many
            _PLANS.clear()
        found = _PLANS[id(rtype)] = _Plan(rtype)
    return found


def scim_variables(rtype: ResourceType, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The variables of a to_legacy template for ``resource`` (canonical SCIM JSON)."""
    plan = _plan(rtype)
    data = _by_lower(resource)
    out = dict(plan.empty)
    for name in plan.lists:
        out[name] = []  # each render its own (absent complex values are never changed)
    attrs = plan.attrs
    for key, value in data.items():
        found = attrs.get(key)
        if found is not None:
            name, make = found
            out[name] = value if make is None else make(value)
    _put_extensions(plan, data, out)
    return out


def _put_extensions(plan: _Plan, data: Mapping[str, Any], out: dict[str, Any]) -> None:
    """``extensions`` (and ``enterprise``) of the resource whose keys, lower-cased, are ``data``."""
    extensions: dict[str, AttrObject] = {}
    for ext_id, ext_key, label, ext_attrs in plan.extensions:
        values = _by_lower(data.get(ext_key))
        extensions[ext_id] = AttrObject(
            label,
            {
                name: (values.get(key) if make is None else make(values.get(key)))
                for key, name, make in ext_attrs
            },
            "attribute",
        )
    out["extensions"] = extensions
    if ENTERPRISE_URN in extensions:
        out["enterprise"] = extensions[ENTERPRISE_URN]


def scim_variables_of(
    rtype: ResourceType, names: Collection[str], head: Mapping[str, Any] | None = None
) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """:func:`scim_variables` as a function of the resource, giving only ``names``.

    For templates that read no other variable (compiled ones, which read only the
    names they name): the variables they read are the same, the others are not made.
    The dict starts as a copy of ``head`` (the environment's globals), which the
    variables override, as ``MappingEnvironment.scope`` merges them.
    """
    start = dict(head or {})
    plan = _plan(rtype)
    wanted = tuple(
        (name, key, make, type(plan.empty[name]) is list, plan.empty[name])
        for key, (name, make) in plan.attrs.items()
        if name in names
    )
    with_extensions = "extensions" in names or "enterprise" in names

    def variables(resource: Mapping[str, Any]) -> dict[str, Any]:
        data = _by_lower(resource)
        out = start.copy()
        for name, key, make, is_list, empty in wanted:
            if key in data:
                value = data[key]
                out[name] = value if make is None else make(value)
            else:
                out[name] = [] if is_list else empty
        if with_extensions:
            _put_extensions(plan, data, out)
        return out

    return variables


_SAMPLES: dict[str, Any] = {
    "string": "sample",
    "boolean": True,
    "integer": 1,
    "decimal": 1.5,
    "dateTime": "2024-01-31T12:00:00Z",
    "reference": "https://example.com/sample",
    "binary": "c2FtcGxl",
}


def _sample(attr: Attribute) -> Any:
    value: Any
    if attr.type == "complex":
        value = {s.name: _sample(s) for s in attr.sub_attributes.values()}
    elif attr.canonical_values:
        value = attr.canonical_values[0]
    else:
        value = _SAMPLES.get(attr.type, "sample")
    return [value] if attr.multi_valued else value


def sample_resource(rtype: ResourceType) -> dict[str, Any]:
    """A resource with every mappable attribute and sub-attribute filled in."""
    out: dict[str, Any] = {name: _sample(attr) for name, attr in attribute_variables(rtype).items()}
    for ext, _required in rtype.extensions:
        out[ext.id] = {a.name: _sample(a) for a in ext.attributes.values()}
    return out
