"""Which SCIM filters the API can answer, and how one becomes query parameters.

The settings say, per legacy field, which operator a query parameter stands
for (``login: {eq: login}``); the mapping says which SCIM attribute is a
plain copy of which legacy field. Together they give the adapter's declared
filter attributes, and turn a filter's ``and``-terms into parameters.

What the parameters cannot carry stays as a *residual*: terms checked on
each candidate record (the SCIM view of it, as the mapping reads it) after
the API has narrowed the candidates, or over the one answer of an API
without paging. A residual with nothing to narrow it is refused: the adapter
never reads every account to answer a filter.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from scim2_models.path import Comparison, FilterNode, ValuePath

from adapters.rest.config import FilterParam, NoPaging, ResourceSettings
from gateway.mapping import Mapping
from gateway.scim.filter import split_conjuncts
from gateway.scim.schema import build_resource_types
from gateway.sdk import ALL_OPERATORS

# Not in a record's SCIM view (the gateway sets meta; members travel apart),
# so a client-side check could not see them.
_OUTSIDE_VIEW = ("meta", "members", "groups")


@cache
def scim_paths(resource_type: str) -> tuple[str, ...]:
    """Every attribute and sub-attribute of the type, lower-case, dotted, URN-qualified."""
    rtype = build_resource_types()[resource_type]
    paths: list[str] = []
    for container, attr in rtype.attributes():
        head = f"{container}:{attr.name}" if container else attr.name
        paths.append(head.lower())
        paths.extend(f"{head}.{sub.name}".lower() for sub in attr.sub_attributes.values())
    return tuple(paths)


ParamIndex = dict[tuple[str, str], FilterParam]


def param_index(settings: ResourceSettings, resource_type: str, mapping: Mapping) -> ParamIndex:
    """(SCIM path, operator) -> the query parameter that answers it."""
    index: ParamIndex = {}
    if not settings.filters:
        return index
    for path in scim_paths(resource_type):
        legacy = mapping.legacy_field(resource_type, path)
        for op, param in settings.filters.get(legacy or "", {}).items():
            index[(path, op)] = param
    return index


def declared_filters(
    settings: ResourceSettings, index: ParamIndex, resource_type: str
) -> dict[str, frozenset[str]]:
    """The adapter's filter capability for one type (see gateway.sdk.Capabilities)."""
    declared: dict[str, set[str]] = {"id": {"eq"}}
    if isinstance(settings.list.paging, NoPaging):
        # One answer holds every record: any attribute of the view can be checked on it.
        for path in scim_paths(resource_type):
            if not path.startswith(_OUTSIDE_VIEW):
                declared.setdefault(path, set()).update(ALL_OPERATORS)
    for path, op in index:
        declared.setdefault(path, set()).add(op)
    return {path: frozenset(ops) for path, ops in declared.items()}


@dataclass(slots=True)
class Plan:
    """A filter as the adapter answers it."""

    params: dict[str, str] = field(default_factory=dict)
    #: Terms checked on each candidate record.
    residual: list[FilterNode] = field(default_factory=list)
    #: Ids from ``id eq`` terms: answered by reading the record.
    ids: list[str] = field(default_factory=list)


def plan_filter(node: FilterNode | None, index: ParamIndex) -> Plan:
    plan = Plan()
    if node is None:
        return plan
    for term in split_conjuncts(node):
        leaf = _leaf(term)
        if leaf is None:
            plan.residual.append(term)
            continue
        path, op, value = leaf
        if (path, op) == ("id", "eq") and isinstance(value, str):
            plan.ids.append(value)
            continue
        param = index.get((path, op))
        text = _as_text(value)
        if param is None or text is None or param.param in plan.params:
            plan.residual.append(term)
            continue
        plan.params[param.param] = text
        if param.exact:
            plan.residual.append(term)
    return plan


def _leaf(term: FilterNode) -> tuple[str, str, Any] | None:
    """``path op value`` of a comparison, also one inside a value path (``emails[value eq x]``)."""
    if isinstance(term, Comparison):
        return str(term.attr_path).lower(), term.op.value, term.value
    if isinstance(term, ValuePath) and isinstance(term.val_filter, Comparison):
        inner = term.val_filter
        path = f"{term.attr_path}.{inner.attr_path}".lower()
        return path, inner.op.value, inner.value
    return None


def _as_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def scim_view(
    mapping: Mapping, resource_type: str, id: str, data: MappingABC[str, Any]
) -> dict[str, Any]:
    """A record as SCIM sees it, for checking a residual filter."""
    return {**mapping.from_legacy(resource_type, data), "id": id}
