"""The Jinja environment of mapping templates: sandboxed, strict, and typed without re-parsing.

Three properties matter and each has a test:

* **Sandboxed.** :class:`MappingEnvironment` is an
  :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment`: no ``_``-prefixed or
  internal attributes (``''.__class__`` is refused), no mutation of lists and
  dicts, no calls to unsafe callables, ``range`` bounded. Only the code
  generator is swapped for Jinja's native one; every attribute lookup and
  call still goes through the sandbox's ``getattr``/``call``.
* **Strict.** Undefined names fail (:class:`~jinja2.StrictUndefined`), also
  where Jinja would let them pass quietly: given to a filter or test, or put
  inside a list or dict the template returns.
* **Typed, and request values stay data.** A template that is one
  ``{{ expression }}`` renders to the expression's Python value as is (a
  bool, a list, the string ``"0042"``); Jinja's native ``literal_eval`` of
  rendered text is never used, so a userName ``"[1, 2]"`` or ``"{{ 7*7 }}"``
  stays that exact string. Any other template renders text: its pieces
  joined (None as nothing) and stripped of surrounding whitespace.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast
from uuid import UUID

from jinja2 import StrictUndefined, Undefined, nodes, pass_eval_context
from jinja2.compiler import Frame
from jinja2.environment import Template
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace

from gateway.mapping.context import AttrObject, LegacyRecord
from gateway.mapping.filters import FILTERS, NONE_SAFE, none_safe
from gateway.mapping.pyexpr import STRICT_INNER, Evaluate, compile_output

__all__ = [
    "CompiledTemplate",
    "MappingEnvironment",
    "SharedRender",
    "TemplateShapeError",
    "to_data",
]


#: Compile expression templates to Python functions (gateway/mapping/pyexpr.py). Off, every
#: template renders through Jinja: the differential tests and ``python -m bench mapping``
#: switch it off to compare both paths; it is no setting.
_COMPILE_EXPRESSIONS = True


class TemplateShapeError(TypeError):
    """A template rendered something that is not JSON data (a function, a macro, ...)."""


def _fail_if_strict(value: Any) -> None:
    if isinstance(value, Undefined) and type(value) is not Undefined:
        value._fail_with_undefined_error()


def _piece(value: Any) -> str:
    """One piece of rendered text: None and an implicit ``else`` are nothing."""
    if value is None or type(value) is Undefined:
        return ""
    return str(value)  # a StrictUndefined raises here


def text_concat(values: Iterable[Any]) -> str:
    return "".join(_piece(v) for v in values)


@pass_eval_context
def _finalize(eval_ctx: EvalContext, value: Any) -> Any:
    # Identity; needing the eval context keeps Jinja from folding constant
    # output to text at compile time ("{{ true }}" stays the boolean).
    return value


class _CodeGenerator(NativeCodeGenerator):
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # `a ~ b` joins like a template does: None is nothing, not "None".
        self.write("environment.text_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _strict(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` failing when given an undefined value instead of passing it on quietly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        # _fail_if_strict on each argument, inlined: filters run once per field and record.
        for arg in args:
            if isinstance(arg, Undefined) and type(arg) is not Undefined:
                arg._fail_with_undefined_error()
        if kwargs:
            for arg in kwargs.values():
                if isinstance(arg, Undefined) and type(arg) is not Undefined:
                    arg._fail_with_undefined_error()
        return func(*args, **kwargs)

    setattr(wrapper, STRICT_INNER, func)  # compiled templates make the same checks inline
    return wrapper


class MappingEnvironment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    #: Block results ({% set %}...{% endset %}, macros) are text, never re-parsed.
    concat = staticmethod(text_concat)
    text_concat = staticmethod(text_concat)

    def __init__(self) -> None:
        super().__init__(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        self.globals = {"range": self.globals["range"], "dict": dict, "namespace": Namespace}
        for name in NONE_SAFE:
            self.filters[name] = none_safe(self.filters[name])
        self.filters.update(FILTERS)
        for name, func in self.filters.items():
            self.filters[name] = _strict(func)
        for name, test in self.tests.items():
            if name not in ("defined", "undefined"):
                self.tests[name] = _strict(cast(Callable[..., Any], test))

    def getattr(self, obj: Any, attribute: str) -> Any:
        # ``record.x`` reads a field: LegacyRecord has no methods or attributes of its
        # own, so the sandbox's checks (which a field value always passes) are skipped.
        if type(obj) is LegacyRecord and not attribute.startswith("_"):
            return obj[attribute]
        return super().getattr(obj, attribute)

    def scope(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """The globals and ``variables``, for rendering several templates with ``scoped=True``."""
        return {**self.globals, **variables}


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    """One field's template, ready to render against a dict of variables."""

    source: str
    tree: nodes.Template
    template: Template | None  # None: a constant (a YAML number or boolean)
    single: bool  # one {{ expression }}: its value as is
    constant: Any = None
    #: ``{{ record.x }}`` (or ``record["x"]``): a plain copy, read without Jinja's machinery
    record_field: str | None = None
    #: The template as a Python function of the scope (None: rendered by Jinja). Its
    #: value is the expression's raw value (``single``) or the finished text.
    evaluate: Evaluate | None = None

    @classmethod
    def compile(cls, env: MappingEnvironment, source: Any) -> CompiledTemplate:
        """Compile ``source``; raises Jinja's TemplateSyntaxError/TemplateAssertionError."""
        if not isinstance(source, str):
            return cls(repr(source), nodes.Template([]), None, True, to_data(source))
        text = source.strip()
        tree = env.parse(text)
        for node in tree.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
            raise TemplateShapeError(
                f"line {node.lineno}: mapping templates cannot extend, include or import"
            )
        body = tree.body
        single = (
            len(body) == 1
            and isinstance(body[0], nodes.Output)
            and len(body[0].nodes) == 1
            and not isinstance(body[0].nodes[0], nodes.TemplateData)
        )
        field = _plain_record_field(body[0].nodes[0]) if single else None  # type: ignore[attr-defined]
        template = env.from_string(text)
        compiled = compile_output(env, text) if _COMPILE_EXPRESSIONS else None
        evaluate = None
        if compiled is not None and compiled[1] == single:
            evaluate = compiled[0]
        return cls(text, tree, template, single, record_field=field, evaluate=evaluate)

    def render(self, variables: Mapping[str, Any], *, scoped: bool = False) -> Any:
        """The template's value as plain JSON data (see :func:`to_data`).

        ``scoped``: ``variables`` came from :meth:`MappingEnvironment.scope`
        (the globals merged in once for all templates of a record).
        """
        if self.template is None:
            return self.constant
        if self.record_field is not None:
            # The same lookup Jinja makes (LegacyRecord.__getitem__, strict for unknown
            # fields), minus a context and a sandbox call per field: most fields are copies.
            return to_data(variables["record"][self.record_field])
        template = self.template
        scope = (
            variables
            if scoped and isinstance(variables, dict)
            else {**template.globals, **variables}
        )
        if self.evaluate is not None:
            value = self.evaluate(scope)
            return to_data(value) if self.single else value
        pieces = list(template.root_render_func(template.new_context(scope, shared=True)))
        if self.single:
            return to_data(pieces[0] if pieces else None)
        return text_concat(pieces).strip()


class SharedRender:
    """Renders the templates of one record (or resource) against one scope.

    Single-expression templates share one Jinja context instead of making one
    each: an expression cannot assign (no ``{% set %}``, blocks or macros), so
    what one reads cannot be changed by another. Templates with statements
    get a context of their own, as :meth:`CompiledTemplate.render` gives them.
    """

    __slots__ = ("_context", "scope")

    def __init__(self, scope: dict[str, Any]) -> None:
        self.scope = scope
        self._context: Context | None = None

    def render(self, compiled: CompiledTemplate) -> Any:
        evaluate = compiled.evaluate
        if evaluate is not None and compiled.record_field is None:
            value = evaluate(self.scope)
            return to_data(value) if compiled.single else value
        template = compiled.template
        if template is None or compiled.record_field is not None or not compiled.single:
            return compiled.render(self.scope, scoped=True)
        context = self._context
        if context is None:
            context = self._context = template.new_context(self.scope, shared=True)
        pieces = list(template.root_render_func(context))
        return to_data(pieces[0] if pieces else None)


def _plain_record_field(node: nodes.Node) -> str | None:
    """``x`` when ``node`` is ``record.x`` or ``record["x"]`` (a public field name)."""
    if isinstance(node, nodes.Getattr):
        target, name = node.node, node.attr
    elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        target, name = node.node, node.arg.value
    else:
        return None
    if not (isinstance(target, nodes.Name) and target.name == "record"):
        return None
    return name if isinstance(name, str) and name and not name.startswith("_") else None


_PLAIN = frozenset({str, bool, int})


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TemplateShapeError("object keys must be strings")
    return key


def to_data(value: Any) -> Any:
    """A rendered value as JSON data: None, bool, int, float, str, list, dict.

    Tuples, sets and generators (``map``/``select``) become lists, dates ISO
    strings, decimals numbers, UUIDs strings, attribute objects and records
    dicts (absent sub-attributes left out). An undefined value raises;
    anything else (a macro, a function, bytes) too.
    """
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return value
    # Plain lists and dicts (what filters such as multi give) before the general checks,
    # their plain items without a call each: the same results, sooner.
    if kind is dict:
        return {
            (k if type(k) is str else _key(k)): (
                v if v is None or type(v) in _PLAIN else to_data(v)
            )
            for k, v in value.items()
        }
    if kind is list:
        return [v if v is None or type(v) in _PLAIN else to_data(v) for v in value]
    if isinstance(value, Undefined):
        _fail_if_strict(value)
        return None  # the implicit else of `x if cond`
    if isinstance(value, str):
        return str.__str__(value)  # Markup and other str subclasses: plain text
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TemplateShapeError("renders a number that is not finite")
        return value
    if isinstance(value, datetime | date):
        text = value.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    if isinstance(value, Decimal):  # numeric columns of SQL databases
        if not value.is_finite():
            raise TemplateShapeError("renders a number that is not finite")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, AttrObject):
        out = {k: to_data(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None}
    if isinstance(value, LegacyRecord):
        value = value.to_dict()
    if isinstance(value, Mapping):
        return {_key(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | Iterator):
        return [to_data(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((to_data(v) for v in value), key=repr)
    raise TemplateShapeError(f"renders a {type(value).__name__}, which is not JSON data")
