"""Compiled expression templates (gateway/mapping/pyexpr.py): each node kind, the fallbacks.

Every case renders the template twice, compiled and through Jinja (compilation
switched off), and wants the same outcome: the same value, of the same types
(compared by repr), or the same exception type and message.
"""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest

from gateway.mapping import sandbox
from gateway.mapping.context import LegacyRecord, Variables, scim_variables
from gateway.mapping.sandbox import CompiledTemplate, MappingEnvironment, SharedRender
from gateway.scim.schema import build_resource_types

ENV = MappingEnvironment()
USER = build_resource_types()["User"]


def pair(source: str) -> tuple[CompiledTemplate, CompiledTemplate]:
    """``source`` compiled as the gateway compiles it, and with compilation switched off."""
    fast = CompiledTemplate.compile(ENV, source)
    with mock.patch.object(sandbox, "_COMPILE_EXPRESSIONS", False):
        slow = CompiledTemplate.compile(ENV, source)
    assert slow.evaluate is None
    return fast, slow


def outcome(template: CompiledTemplate, variables: dict[str, Any]) -> tuple[str, ...]:
    try:
        return ("value", repr(template.render(variables)))
    except Exception as exc:
        return ("error", type(exc).__name__, str(exc))


def same(source: str, **variables: Any) -> tuple[str, ...]:
    """The outcome of ``source``, checked compiled and equal to Jinja's."""
    fast, slow = pair(source)
    assert fast.evaluate is not None, f"{source} was not compiled"
    found = outcome(fast, variables)
    assert found == outcome(slow, variables)
    # Through SharedRender (one scope for a record's templates) too.
    scope = ENV.scope(variables)
    try:
        shared = ("value", repr(SharedRender(scope).render(fast)))
    except Exception as exc:
        shared = ("error", type(exc).__name__, str(exc))
    assert shared == found
    return found


def value(source: str, **variables: Any) -> Any:
    found = same(source, **variables)
    assert found[0] == "value", found
    return eval(found[1])  # the repr of JSON data we made


def error(source: str, **variables: Any) -> tuple[str, str]:
    found = same(source, **variables)
    assert found[0] == "error", found
    return found[1], found[2]


RECORD = LegacyRecord(
    {"login": "bjensen", "n": 7, "tags": ["a", "b"], "contact": {"mail": "b@x"}, "none": None},
    known=None,
)


# -- node kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ 42 }}", 42),
        ("{{ 'text' }}", "text"),
        ("{{ 2.5 }}", 2.5),
        ("{{ true }}", True),
        ("{{ none }}", None),
        ("{{ [1, 'a', none] }}", [1, "a", None]),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ (1,) }}", [1]),
        ("{{ () }}", []),
        ("{{ {'a': 1, 'b': [2]} }}", {"a": 1, "b": [2]}),
        ("{{ {'a': 1, 'a': 2} }}", {"a": 2}),
    ],
)
def test_constants_and_literals(source: str, expected: Any) -> None:
    assert value(source) == expected


def test_names_read_the_scope_and_unknown_ones_are_strictly_undefined() -> None:
    assert value("{{ a }}", a="x") == "x"
    assert value("{{ [a, b] }}", a=1, b=None) == [1, None]
    assert error("{{ nope }}") == ("UndefinedError", "'nope' is undefined")
    assert value("{{ nope is defined }}") is False
    assert value("{{ range(3) | list }}") == [0, 1, 2]  # a global


def test_attributes_of_records_scim_values_and_dicts() -> None:
    variables = scim_variables(USER, {"name": {"givenName": "Barbara"}, "emails": [{"value": "m"}]})
    assert value("{{ name.givenName }}", **variables) == "Barbara"
    assert value("{{ name.familyName }}", **variables) is None
    assert error("{{ name.givnName }}", **variables)[0] == "UndefinedError"
    assert value("{{ name.items() | list | length }}", **variables) > 0  # a dict method
    assert value("{{ record.login }}", record=RECORD) == "bjensen"
    assert value("{{ record.contact.mail }}", record=RECORD) == "b@x"
    assert value("{{ record.missing }}", record=RECORD) is None
    assert value("{{ vars.field }}", vars=Variables({"field": 7})) == 7
    assert error("{{ vars.nope }}", vars=Variables({"field": 7}))[0] == "UndefinedError"
    # A name that is a method of the class is the method, not the variable, as in Jinja.
    assert value("{{ vars.to_dict() }}", vars=Variables({"to_dict": 1})) == {"to_dict": 1}
    assert value("{{ d.k }}", d={"k": 1}) == 1
    assert error("{{ d.k }}", d={})[1] == "'dict object' has no attribute 'k'"
    assert error("{{ n.x }}", n=None)[1] == "'None' has no attribute 'x'"
    assert value("{{ 'abc'.upper() }}") == "ABC"


def test_strict_record_fields() -> None:
    record = LegacyRecord({"login": "x"}, known=frozenset({"login", "mail"}))
    assert value("{{ record.mail }}", record=record) is None
    kind, message = error("{{ record.mial }}", record=record)
    assert kind == "UndefinedError" and "not in record_fields" in message


def test_items_and_slices() -> None:
    assert value("{{ a[1] }}", a=[1, 2, 3]) == 2
    assert value("{{ a[-1] }}", a=[1, 2, 3]) == 3
    assert value("{{ a[1:] }}", a=[1, 2, 3]) == [2, 3]
    assert value("{{ a[::2] }}", a=[1, 2, 3]) == [1, 3]
    assert value("{{ a[:1] ~ s[1:2] }}", a="xy", s="abc") == "xb"
    assert value("{{ d['k'] }}", d={"k": "v"}) == "v"
    assert value("{{ record['login'] }}", record=RECORD) == "bjensen"
    assert error("{{ a[5] }}", a=[1])[0] == "UndefinedError"


def test_filters_plain_with_arguments_and_with_the_environment_or_eval_context() -> None:
    assert value("{{ a | upper }}", a="x") == "X"
    assert value("{{ a | upper }}", a=None) is None
    assert value("{{ a | multi(type='work', primary=true) }}", a="m") == [
        {"value": "m", "type": "work", "primary": True}
    ]
    assert value("{{ a | truncate(3, true, '', 0) }}", a="abcdef") == "abc"  # environment
    assert value("{{ a | replace('a', 'b') }}", a="aa") == "bb"  # eval context
    assert value("{{ a | default('d') }}", a=None) == "d"
    assert value("{{ (a if false) | default('d') }}", a=1) is None  # the plain undefined
    assert error("{{ nope | upper }}")[1] == "'nope' is undefined"
    assert error("{{ a | join(nope) }}", a=["x"])[1] == "'nope' is undefined"
    assert error("{{ a | multi(type=nope) }}", a="m")[1] == "'nope' is undefined"
    assert error("{{ a | int(nope, base=16) }}", a="1")[0] == "UndefinedError"
    assert error("{{ a | custom_field(id='x') }}", a=[])[0] == "FilterValueError"


def test_tests() -> None:
    assert value("{{ a is none }}", a=None) is True
    assert value("{{ a is not none }}", a=None) is False
    assert value("{{ a is number }}", a=1) is True
    assert value("{{ a is undefined }}") is True
    assert value("{{ a is divisibleby(3) }}", a=9) is True
    assert error("{{ a is number }}")[1] == "'a' is undefined"


def test_calls() -> None:
    assert value("{{ {'y': true, 'n': false}.get(a) }}", a="y") is True
    assert value("{{ {'y': true, 'n': false}.get(a) }}", a="?") is None
    assert error("{{ {'y': true}.get(a) }}", a=["unhashable"])[0] == "TypeError"
    assert value("{{ {'y': [1]}.get(a) }}", a="y") == [1]  # a mutable value: the generic call
    assert value("{{ dict(a=1) }}") == {"a": 1}
    assert value("{{ d.get('k', 'x') }}", d={}) == "x"
    assert value("{{ '%s-%s' | format(a, 1) }}", a="x") == "x-1"
    assert error("{{ nope() }}")[1] == "'nope' is undefined"
    assert error("{{ a() }}", a=1)[0] == "TypeError"


def test_conditions_and_the_implicit_else() -> None:
    assert value("{{ 'y' if a else 'n' }}", a=1) == "y"
    assert value("{{ 'y' if a else 'n' }}", a=0) == "n"
    assert value("{{ 'y' if a }}", a=0) is None
    assert value("x-{{ 'y' if a }}", a=0) == "x-"
    assert error("{{ 'y' if nope }}")[1] == "'nope' is undefined"


def test_comparisons_logic_and_arithmetic() -> None:
    assert value("{{ a == 'x' }}", a="x") is True
    assert value("{{ 1 < a < 3 }}", a=2) is True
    assert value("{{ 1 < a < 3 }}", a=5) is False
    assert value("{{ a in b }}", a=1, b=[1]) is True
    assert value("{{ a not in b }}", a=1, b=[1]) is False
    assert value("{{ a and b }}", a="x", b=0) == 0
    assert value("{{ a or b }}", a="", b="y") == "y"
    assert value("{{ not a }}", a=[]) is True
    assert value("{{ a + b * 2 - c // 2 }}", a=1, b=2, c=5) == 3
    assert value("{{ a / 2 }}", a=3) == 1.5
    assert value("{{ a % 3 }}", a=7) == 1
    assert value("{{ a ** 2 }}", a=3) == 9
    assert value("{{ -a }}", a=3) == -3
    assert value("{{ +a }}", a=3) == 3
    assert error("{{ a / 0 }}", a=1)[0] == "ZeroDivisionError"
    assert error("{{ a + 'x' }}", a=1)[0] == "TypeError"
    assert error("{{ a < 1 }}", a="x")[0] == "TypeError"
    assert error("{{ a.x or 1 }}", a={})[0] == "UndefinedError"


def test_concatenation_and_text_templates() -> None:
    assert value("{{ a ~ b ~ 1 }}", a="x", b=None) == "x1"
    assert value("id-{{ n }}", n=42) == "id-42"
    assert value("{{ a }} {{ b }}", a="Barbara", b=None) == "Barbara"
    assert value("  {{ a }}\n", a=[1]) == [1]
    assert error("{{ a ~ nope }}", a="x")[1] == "'nope' is undefined"


def test_constant_folding_as_jinja_folds() -> None:
    # Jinja folds `none ~ 'a'` to "Nonea" under a filter (Concat.as_const), not alone.
    assert value("{{ (none ~ 'a') | upper }}") == "NONEA"
    assert value("{{ none ~ 'a' }}") == "a"
    assert value("{{ 1 + 2 }}") == 3
    assert value("{{ [1, 2] | length }}") == 2


def test_shipped_shapes_compile() -> None:
    for source in (
        "{{ record.login }}",
        "{{ record.mail | multi(type=record.mail_kind or 'work', display=record.mail_label,"
        " primary={'y': true, 'n': false}.get(record.mail_primary)) }}",
        "{{ (record.status == 'enabled') if record.status else none }}",
        "{{ phoneNumbers | of_type('work') if phoneNumbers | of_type('work', none)"
        " else phoneNumbers | primary }}",
        "{{ [{'id': vars.externalid_field | int, 'value': externalId or ''}] }}",
    ):
        assert pair(source)[0].evaluate is not None, source


# -- what stays with Jinja ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{% if a %}{{ a }}{% endif %}", {"a": 1}),
        ("{% set x = 1 %}{{ x }}", {}),
        ("{{ a | map('upper') | list }}", {"a": ["x"]}),  # pass_context filter
        ("{{ a is sameas b }}", {"a": 1, "b": 1}),  # identity
        ("{{ f(*a) }}", {"f": dict, "a": []}),
        ("{{ dict(**a) }}", {"a": {"k": 1}}),
        ("{{ a | nosuch if false }}", {"a": 1}),  # unknown filter, only fails when run
        ("{{ 1e999 }}", {}),  # Jinja writes inf, which fails at render time
        ("{{ self }}", {}),
        ("{{ dict(_loop_vars=1) }}", {}),
    ],
)
def test_other_shapes_stay_with_jinja_and_render_as_before(
    source: str, variables: dict[str, Any]
) -> None:
    fast, slow = pair(source)
    assert fast.evaluate is None
    assert outcome(fast, variables) == outcome(slow, variables)


def test_compilation_switched_off_renders_every_template_through_jinja() -> None:
    fast, slow = pair("{{ a | upper }}")
    assert fast.evaluate is not None and slow.evaluate is None
    assert fast.render({"a": "x"}) == slow.render({"a": "x"}) == "X"


# -- the sandbox, compiled --------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ userName.__class__ }}",
    "{{ name.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ emails.append(1) }}",
    "{{ name.update({'givenName': 'x'}) }}",
    "{{ name.clear() }}",
    "{{ '{0.__class__}'.format(userName) }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ record.__class__ }}",
    "{{ record._data }}",
    "{{ record.login.__class__.__mro__ }}",
    "{{ vars._data }}",
    "{{ range(10**9) | list }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_the_sandbox_refuses_as_before_with_templates_compiled(source: str) -> None:
    variables = {
        **scim_variables(USER, {"userName": "b", "name": {"givenName": "B"}, "emails": []}),
        "record": RECORD,
        "vars": Variables({"f": 1}),
    }
    fast, slow = pair(source)
    found = outcome(fast, variables)
    assert found == outcome(slow, variables)
    assert found[0] == "error", found
    assert found[1] in ("SecurityError", "UndefinedError", "OverflowError", "TemplateShapeError")
