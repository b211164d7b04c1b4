"""Compiled mapping templates do exactly what Jinja does, on every shipped mapping.

Each mapping directory under mappings/ is loaded twice: as the gateway loads it
(expression templates compiled, gateway/mapping/pyexpr.py) and with compilation
switched off (every template rendered by Jinja). Random legacy records (missing
fields, None, "", numbers, booleans, lists, nested objects, text such as "true",
"[1]" or "{{7*7}}") and random SCIM resources then go through both, template by
template and whole: the outcomes must be equal, values by repr (types and order
count) and failures by exception type and the message Field.failed reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2 import nodes

from gateway.mapping import sandbox
from gateway.mapping.context import LegacyRecord, Variables, sample_resource, scim_variables
from gateway.mapping.engine import MAPPINGS_DIR, TypeMapping, load_mapping, scim_value

#: What the Redmine mappings read from the environment (their custom field ids).
ENVIRONMENT = {"REDMINE_USER_EXTERNAL_ID_FIELD": "7", "REDMINE_GROUP_EXTERNAL_ID_FIELD": "8"}
DIRECTORIES = sorted(p for p in MAPPINGS_DIR.iterdir() if p.is_dir())


def _load_all() -> list[tuple[str, TypeMapping, TypeMapping]]:
    """(label, compiled, Jinja-only) per resource type of every shipped mapping."""
    out = []
    with mock.patch.dict(os.environ, {k: v for k, v in ENVIRONMENT.items() if k not in os.environ}):
        for directory in DIRECTORIES:
            fast = load_mapping(directory)
            with mock.patch.object(sandbox, "_COMPILE_EXPRESSIONS", False):
                slow = load_mapping(directory)
            for name in sorted(fast.types):
                out.append((f"{directory.name}/{name}", fast.types[name], slow.types[name]))
    return out


TYPES = _load_all()

TEXTS = ["", "true", "false", "True", "[1]", "{{7*7}}", "y", "n", "enabled", "work", "home"]
TEXTS += ["A", "T", "1", "7", "0042", " 7 ", "2024-01-31T12:00:00Z", "x" * 40, "Zoë"]
scalar = (
    st.none()
    | st.booleans()
    | st.sampled_from([0, 1, 2, 3, 7, 8, -1, 10**20])
    | st.integers()
    | st.floats()  # nan and inf too: both paths must refuse them alike
    | st.sampled_from(TEXTS)
    | st.text(max_size=8)
)
KEYS = ["id", "value", "name", "type", "primary", "display", "Value", "TYPE", "x", ""]
json_value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=8,
)


def _fields_of(tm: TypeMapping) -> list[str]:
    names = set(tm.known_record_fields or ())
    for field in tm.from_legacy_fields:
        names |= {n.attr for n in field.template.tree.find_all(nodes.Getattr)}
    return sorted(names)


def record_of(tm: TypeMapping) -> st.SearchStrategy[dict[str, Any]]:
    fields = _fields_of(tm)
    return st.fixed_dictionaries({}, optional={name: json_value for name in fields}) | (
        st.dictionaries(st.sampled_from(fields) | st.text(max_size=5), json_value, max_size=6)
    )


def _like(sample: Any) -> st.SearchStrategy[Any]:
    """Values shaped like ``sample`` (often), or anything."""
    if isinstance(sample, dict):
        shaped: st.SearchStrategy[Any] = st.fixed_dictionaries(
            {}, optional={k: _like(v) for k, v in sample.items()}
        )
    elif isinstance(sample, list) and sample:
        shaped = st.lists(_like(sample[0]), max_size=3)
    else:
        shaped = st.just(sample)
    return shaped | shaped | json_value


def resource_of(tm: TypeMapping) -> st.SearchStrategy[dict[str, Any]]:
    sample = sample_resource(tm.rtype)
    shaped = st.fixed_dictionaries({}, optional={k: _like(v) for k, v in sample.items()})
    lower = st.booleans()
    return st.tuples(shaped, lower).map(
        lambda pair: {k.lower(): v for k, v in pair[0].items()} if pair[1] else pair[0]
    )


def outcome(call: Callable[[], Any], fail: Callable[[Exception], Exception]) -> tuple[str, ...]:
    try:
        return ("value", repr(call()))
    except Exception as exc:
        return ("error", type(exc).__name__, str(fail(exc)))


def _same_from_legacy(fast: TypeMapping, slow: TypeMapping, record: dict[str, Any]) -> None:
    scope = {"record": LegacyRecord(record, fast.known_record_fields), "vars": Variables(fast.vars)}
    for f, s in zip(fast.from_legacy_fields, slow.from_legacy_fields, strict=True):
        assert f.target is not None and s.target is not None
        mine = outcome(lambda f=f: scim_value(f.target, f.template.render(scope)), f.failed)
        theirs = outcome(lambda s=s: scim_value(s.target, s.template.render(scope)), s.failed)
        assert mine == theirs, f.label
    whole = outcome(lambda: fast.from_legacy(record), lambda e: e)
    assert whole == outcome(lambda: slow.from_legacy(record), lambda e: e)


def _same_to_legacy(fast: TypeMapping, slow: TypeMapping, resource: dict[str, Any]) -> None:
    scope = {**scim_variables(fast.rtype, resource), "vars": Variables(fast.vars)}
    for f, s in zip(fast.to_legacy_fields, slow.to_legacy_fields, strict=True):
        mine = outcome(lambda f=f: f.template.render(scope), f.failed)
        assert mine == outcome(lambda s=s: s.template.render(scope), s.failed), f.label
    whole = outcome(lambda: fast.to_legacy(resource), lambda e: e)
    assert whole == outcome(lambda: slow.to_legacy(resource), lambda e: e)


def test_the_shipped_templates_are_compiled() -> None:
    assert {label.split("/")[0] for label, _, _ in TYPES} == {d.name for d in DIRECTORIES}
    for label, fast, slow in TYPES:
        for field in (*fast.to_legacy_fields, *fast.from_legacy_fields):
            assert field.template.evaluate is not None, f"{label} {field.label}"
        for field in (*slow.to_legacy_fields, *slow.from_legacy_fields):
            assert field.template.evaluate is None


@pytest.mark.parametrize(("label", "fast", "slow"), TYPES, ids=[t[0] for t in TYPES])
def test_sample_records_and_resources_map_alike(
    label: str, fast: TypeMapping, slow: TypeMapping
) -> None:
    resource = sample_resource(fast.rtype)
    record = fast.to_legacy(resource)
    _same_to_legacy(fast, slow, resource)
    _same_from_legacy(fast, slow, record)
    _same_from_legacy(fast, slow, {})
    _same_to_legacy(fast, slow, {})


@given(st.data())
def test_any_legacy_record_maps_alike_compiled_and_through_jinja(data: st.DataObject) -> None:
    for label, fast, slow in TYPES:
        record = data.draw(record_of(fast), label=label)
        _same_from_legacy(fast, slow, record)


@given(st.data())
def test_any_scim_resource_maps_alike_compiled_and_through_jinja(data: st.DataObject) -> None:
    for label, fast, slow in TYPES:
        resource = data.draw(resource_of(fast), label=label)
        _same_to_legacy(fast, slow, resource)
