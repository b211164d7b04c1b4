"""The per-field work worked out at load time gives what the general functions give.

``scim_converter`` against ``scim_value(target, to_data(value))``, ``putter``
against ``_put``, ``scim_variables_of`` against ``scim_variables``: for every
attribute and sub-attribute of User and Group, on random values, the same result
(by repr: types and order count) or the same exception type and message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mapping.context import (
    attribute_variables,
    sample_resource,
    scim_variables,
    scim_variables_of,
)
from gateway.mapping.engine import _put, putter, resolve_path, scim_converter, scim_value
from gateway.mapping.filters import _elements, _field, _pick, of_type, primary
from gateway.mapping.sandbox import MappingEnvironment, to_data
from gateway.scim.schema import Resolved, build_resource_types

TYPES = build_resource_types()
ENV = MappingEnvironment()


def _targets() -> list[Resolved]:
    out = []
    for rtype in (TYPES["User"], TYPES["Group"]):
        for container, attr in rtype.attributes():
            head = f"{container}:{attr.name}" if container else attr.name
            paths = [head] + (
                []
                if attr.multi_valued
                else [f"{head}.{s.name}" for s in attr.sub_attributes.values()]
            )
            for path in paths:
                found = resolve_path(rtype, path)
                if found is not None:
                    out.append(found)
    return out


TARGETS = _targets()
TEXTS = ["", "true", "False", "[1]", '{"value": 1}', "2024-01-31T12:00:00Z", "7", "x"]
scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from(TEXTS)
    | st.text(max_size=6)
)
SUBS = ["value", "Value", "type", "primary", "display", "givenName", "$ref", "nope", ""]
value = st.recursive(
    scalar,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.sampled_from(SUBS) | st.integers(0, 2), inner, max_size=4)
    ),
    max_leaves=8,
)


def outcome(call: Callable[[], Any]) -> tuple[str, ...]:
    try:
        return ("value", repr(call()))
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


@settings(max_examples=300)
@given(st.sampled_from(TARGETS), value)
def test_scim_converter_is_scim_value_of_to_data(target: Resolved, raw: Any) -> None:
    converted = outcome(lambda: scim_converter(target)(raw))
    assert converted == outcome(lambda: scim_value(target, to_data(raw)))


@given(st.sampled_from(TARGETS), st.sampled_from(TARGETS), value, value)
def test_putter_is_put(first: Resolved, second: Resolved, a: Any, b: Any) -> None:
    mine: dict[str, Any] = {}
    theirs: dict[str, Any] = {}

    def put_mine() -> dict[str, Any]:
        putter(first)(mine, a)
        putter(second)(mine, b)
        return mine

    def put_theirs() -> dict[str, Any]:
        _put(theirs, first, a)
        _put(theirs, second, b)
        return theirs

    assert outcome(put_mine) == outcome(put_theirs)


def _resource(rtype_name: str) -> st.SearchStrategy[dict[str, Any]]:
    sample = sample_resource(TYPES[rtype_name])
    keys = st.sampled_from([*sample, *(k.lower() for k in sample), *(k.upper() for k in sample)])
    shaped = st.fixed_dictionaries({}, optional={k: st.just(v) | value for k, v in sample.items()})
    return st.tuples(shaped, st.dictionaries(keys, value, max_size=4)).map(
        lambda pair: {**pair[0], **pair[1]}
    )


@given(st.sampled_from(["User", "Group"]), st.data())
def test_scim_variables_of_gives_the_named_variables_of_scim_variables(
    type_name: str, data: st.DataObject
) -> None:
    rtype = TYPES[type_name]
    everything = [*attribute_variables(rtype), "extensions", "enterprise"]
    names = data.draw(st.sets(st.sampled_from(everything)))
    resource = data.draw(_resource(type_name))
    full = ENV.scope(scim_variables(rtype, resource))
    some = scim_variables_of(rtype, names, ENV.globals)(resource)
    # Every name asked for that scim_variables gives, maybe more (extensions come
    # together), and nothing scim_variables does not give.
    assert {n for n in names if n in full} | set(ENV.globals) <= set(some) <= set(full)
    assert repr({n: some[n] for n in sorted(some)}) == repr({n: full[n] for n in sorted(some)})


# -- primary and of_type, against their plain form ----------------------------------------


def plain_primary(values: Any, attr: str | None = "value") -> Any:
    items = _elements(values, "primary")
    if not items:
        return None
    chosen = next((i for i in items if _field(i, "primary") is True), items[0])
    return _pick(chosen, attr)


def plain_of_type(values: Any, type_: str, attr: str | None = "value") -> Any:
    wanted = type_.lower()
    for item in _elements(values, "of_type"):
        kind = _field(item, "type")
        if isinstance(kind, str) and kind.lower() == wanted:
            return _pick(item, attr)
    return None


@given(
    st.sampled_from(["emails", "phoneNumbers", "ims", "name", "title"]),
    value,
    st.sampled_from([None, "value", "type", "display", "primary", "nope"]),
    st.sampled_from(["work", "WORK", "home", ""]),
)
def test_primary_and_of_type_answer_as_their_plain_form(
    attribute: str, raw: Any, attr: str | None, kind: str
) -> None:
    variables = scim_variables(TYPES["User"], {attribute: raw})
    for values in (variables[attribute], raw):
        picked = outcome(functools.partial(primary, values, attr))
        assert picked == outcome(functools.partial(plain_primary, values, attr))
        typed = outcome(functools.partial(of_type, values, kind, attr))
        assert typed == outcome(functools.partial(plain_of_type, values, kind, attr))
