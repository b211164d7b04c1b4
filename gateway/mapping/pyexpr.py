"""Expression templates as plain Python closures: Jinja's generated code, minus its machinery.

Most mapping templates are one ``{{ expression }}`` (``record.login``,
``record.mail | multi(type='work')``, ``status == 'enabled'``). Jinja renders
each through a generator, a :class:`~jinja2.runtime.Context` and a list of
pieces; for a record of a dozen fields that machinery costs more than the
expressions. :func:`compile_output` turns such a template into a closure over
the render scope (the dict :class:`~gateway.mapping.sandbox.SharedRender`
holds) that makes exactly the calls Jinja's generated code makes, in the same
order:

* names are read from the scope; an unknown one is the environment's
  (strict) undefined, as Jinja's ``resolve_or_missing`` gives it;
* attributes and items go through ``env.getattr``/``env.getitem``, so the
  sandbox decides (a :class:`LegacyRecord` field is read as
  ``MappingEnvironment.getattr`` reads it);
* filters and tests are the environment's own callables (strict-wrapped);
  calls go through the sandbox's ``is_safe_callable`` and Jinja's call rules;
* constants are folded where Jinja's code generator folds them (its own
  optimizer runs on the same nodes), so even quirks of folding are kept.

Anything else (statements, ``self``, ``sameas``, filters that want the
context, ``*args``, intercepted operators, ...) is not compiled: the template
keeps rendering through Jinja. tests/mapping/test_pyexpr.py checks each node
kind and tests/fuzz/test_mapping_fuzz.py compares both paths on every shipped
template.
"""

from __future__ import annotations

import copy
import math
import operator
from collections.abc import Callable
from types import BuiltinMethodType
from typing import Any

from jinja2 import nodes
from jinja2.compiler import has_safe_repr
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.optimizer import Optimizer
from jinja2.runtime import Undefined, new_context
from jinja2.utils import _PassArg

from gateway.mapping.context import LegacyRecord

__all__ = ["Evaluate", "compile_output"]

#: A compiled template: the render scope in, the expression's raw value (or the text) out.
Evaluate = Callable[[dict[str, Any]], Any]

#: Node types whose code generator visitor is ``@optimizeconst``: constant subtrees
#: under them are folded at compile time (Concat is not: the gateway's generator
#: overrides its visitor without the decorator).
_FOLDED = (
    nodes.Getattr,
    nodes.Getitem,
    nodes.Filter,
    nodes.Test,
    nodes.CondExpr,
    nodes.Call,
    nodes.Compare,
    nodes.BinExpr,
    nodes.UnaryExpr,
)

_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda a, b: a in b,
    "notin": lambda a, b: a not in b,
}
_BINARY: dict[type[nodes.BinExpr], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: operator.mul,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
    nodes.Pow: operator.pow,
    nodes.Mod: operator.mod,
}
_UNARY: dict[type[nodes.UnaryExpr], Callable[[Any], Any]] = {
    nodes.Neg: operator.neg,
    nodes.Pos: operator.pos,
}
#: Keywords Jinja's Context.call swallows; a call naming them stays with Jinja.
_CALL_INTERNALS = frozenset({"_loop_vars", "_block_vars"})
_STOP_ITERATION = "value was undefined because a callable raised a StopIteration exception"
#: Dict literals up to this size are built as CPython builds a dict display (all keys
#: and values first, then the dict): larger ones are built piecewise, so stay with Jinja.
_DICT_ITEMS = 8


class _Unsupported(Exception):
    """A node the closures do not reproduce: the template renders through Jinja."""


def compile_output(env: Environment, text: str) -> tuple[Evaluate, bool] | None:
    """``text`` (a stripped template) as a closure, and whether it is one expression.

    One expression: the closure gives its raw value (``to_data`` is the caller's).
    Text and expressions mixed: the pieces joined as ``text_concat`` joins them,
    stripped. None when the template has statements or anything not compiled.
    """
    tree = env.parse(text)  # a tree of our own: Jinja's optimizer changes it in place
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    children = body[0].nodes
    compiler = _Compiler(env)
    try:
        pieces = [compiler.output(child) for child in children]
    except _Unsupported:
        return None
    if len(children) == 1 and not isinstance(children[0], nodes.TemplateData):
        return pieces[0], True
    concat = env.text_concat  # type: ignore[attr-defined]

    def text_template(scope: dict[str, Any]) -> Any:
        return concat([piece(scope) for piece in pieces]).strip()

    return text_template, False


def _constant_ok(value: Any) -> bool:
    """Jinja writes a constant as its repr: anything whose repr does not evaluate back
    (``inf``, a float written ``nan``) fails at render time there; stay with Jinja."""
    if not has_safe_repr(value):
        return False
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, complex):
        return math.isfinite(value.real) and math.isfinite(value.imag)
    if isinstance(value, tuple | list | set | frozenset):
        return all(_constant_ok(v) for v in value)
    if isinstance(value, dict):
        return all(_constant_ok(k) and _constant_ok(v) for k, v in value.items())
    return True


def _immutable(value: Any) -> bool:
    if value is None or type(value) in (bool, int, float, str, complex, range):
        return True
    if type(value) in (tuple, frozenset):
        return all(_immutable(v) for v in value)
    return False


class _Compiler:
    """One template's nodes to closures, mirroring jinja2.compiler.CodeGenerator."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.eval_ctx = EvalContext(env, None)
        self.optimizer = Optimizer(env)

    def output(self, node: nodes.Node) -> Evaluate:
        if isinstance(node, nodes.TemplateData):
            data = node.as_const(self.eval_ctx)
            return lambda scope: data
        # The finalize function needs the eval context, so Jinja folds no output child
        # itself; the identity finalize is left out.
        return self.expr(node)

    def expr(self, node: nodes.Node) -> Evaluate:
        if isinstance(node, _FOLDED):
            folded = self.optimizer.visit(node, self.eval_ctx)
            if folded != node:
                return self.expr(folded)
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise _Unsupported(type(node).__name__)
        return handler(self, node)

    # -- literals and names ---------------------------------------------------------

    def const(self, node: nodes.Const) -> Evaluate:
        value = node.value
        if not _constant_ok(value):
            raise _Unsupported("constant")
        if _immutable(value):
            return lambda scope: value
        # Jinja evaluates the constant's repr each time: a fresh list or dict per render.
        return lambda scope: copy.deepcopy(value)

    def name(self, node: nodes.Name) -> Evaluate:
        if node.ctx != "load" or node.name == "self":  # `self` is a TemplateReference
            raise _Unsupported("name")
        name = node.name
        undefined = self.env.undefined

        def read(scope: dict[str, Any]) -> Any:
            return scope[name] if name in scope else undefined(name=name)

        return read

    def sequence(self, node: nodes.List | nodes.Tuple) -> Evaluate:
        items = [self.expr(item) for item in node.items]
        if isinstance(node, nodes.Tuple):
            if node.ctx != "load":
                raise _Unsupported("tuple")
            return lambda scope: tuple([item(scope) for item in items])
        return lambda scope: [item(scope) for item in items]

    def dict_(self, node: nodes.Dict) -> Evaluate:
        if len(node.items) > _DICT_ITEMS:
            raise _Unsupported("dict")
        pairs = [(self.expr(p.key), self.expr(p.value)) for p in node.items]

        def build(scope: dict[str, Any]) -> Any:
            return dict([(key(scope), value(scope)) for key, value in pairs])

        return build

    # -- access -------------------------------------------------------------------------

    def getattr_(self, node: nodes.Getattr) -> Evaluate:
        target = self.expr(node.node)
        attribute = node.attr
        lookup = self.env.getattr
        if attribute.startswith("_"):
            return lambda scope: lookup(target(scope), attribute)

        def read(scope: dict[str, Any]) -> Any:
            obj = target(scope)
            # MappingEnvironment.getattr's own shortcut: a record has only fields.
            if type(obj) is LegacyRecord:
                return obj[attribute]
            return lookup(obj, attribute)

        if isinstance(node.node, nodes.Name) and node.node.name != "self":
            name = node.node.name
            undefined = self.env.undefined

            def read_name(scope: dict[str, Any]) -> Any:
                obj = scope[name] if name in scope else undefined(name=name)
                if type(obj) is LegacyRecord:
                    return obj[attribute]
                return lookup(obj, attribute)

            return read_name
        return read

    def getitem(self, node: nodes.Getitem) -> Evaluate:
        if node.ctx != "load":
            raise _Unsupported("getitem")
        target = self.expr(node.node)
        arg = node.arg
        if isinstance(arg, nodes.Slice):  # Jinja subscripts slices directly
            parts = [None if p is None else self.expr(p) for p in (arg.start, arg.stop, arg.step)]

            def sliced(scope: dict[str, Any]) -> Any:
                obj = target(scope)
                bounds = [None if p is None else p(scope) for p in parts]
                return obj[slice(*bounds)]

            return sliced
        key = self.expr(arg)
        lookup = self.env.getitem
        return lambda scope: lookup(target(scope), key(scope))

    # -- filters, tests, calls ------------------------------------------------------

    def _arguments(self, node: nodes.Filter | nodes.Test | nodes.Call) -> tuple[
        list[Evaluate], list[tuple[str, Evaluate]]
    ]:
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Unsupported("*args")
        args = [self.expr(a) for a in node.args]
        kwargs = [(k.key, self.expr(k.value)) for k in node.kwargs]
        return args, kwargs

    def filter_or_test(self, node: nodes.Filter | nodes.Test) -> Evaluate:
        if node.node is None:  # a filter block
            raise _Unsupported("filter block")
        is_filter = isinstance(node, nodes.Filter)
        if not is_filter and node.name == "sameas":  # identity: constants are copies here
            raise _Unsupported("sameas")
        func = (self.env.filters if is_filter else self.env.tests).get(node.name)
        if func is None:  # fails at render time in Jinja (in an if-expression)
            raise _Unsupported("unknown filter or test")
        pass_arg = _PassArg.from_obj(func)
        if pass_arg is _PassArg.context:
            raise _Unsupported("pass_context")
        value = self.expr(node.node)
        args, kwargs = self._arguments(node)
        env = self.env
        if pass_arg is _PassArg.environment:
            return lambda scope: func(
                env, value(scope), *[a(scope) for a in args], **{k: v(scope) for k, v in kwargs}
            )
        if pass_arg is _PassArg.eval_context:
            # A context's eval context: made with it, for a template without a name.
            return lambda scope: func(
                EvalContext(env, None),
                value(scope),
                *[a(scope) for a in args],
                **{k: v(scope) for k, v in kwargs},
            )
        if not args and not kwargs:
            return lambda scope: func(value(scope))
        if not kwargs:
            if len(args) == 1:
                (first,) = args
                return lambda scope: func(value(scope), first(scope))
            return lambda scope: func(value(scope), *[a(scope) for a in args])
        return lambda scope: func(
            value(scope), *[a(scope) for a in args], **{k: v(scope) for k, v in kwargs}
        )

    def call(self, node: nodes.Call) -> Evaluate:
        args, kwargs = self._arguments(node)
        if any(key in _CALL_INTERNALS for key, _ in kwargs):
            raise _Unsupported("call internals")
        method = self._constant_method(node)
        if method is not None and not kwargs:
            # `{'y': true, 'n': false}.get(x)`: the sandbox's answers for a constant
            # receiver (the method is safe, takes no context) are known now.
            if len(args) == 1:
                (first,) = args
                return lambda scope: method(first(scope))
            return lambda scope: method(*[a(scope) for a in args])
        target = self.expr(node.node)
        env = self.env
        safe = env.is_safe_callable  # type: ignore[attr-defined]
        undefined = env.undefined

        def invoke(scope: dict[str, Any]) -> Any:
            func = target(scope)
            call_args = [a(scope) for a in args]
            call_kwargs = {k: v(scope) for k, v in kwargs}
            # SandboxedEnvironment.call, then Context.call.
            if not safe(func):
                raise SecurityError(f"{func!r} is not safely callable")
            if (
                hasattr(func, "__call__") and _PassArg.from_obj(func.__call__) is not None
            ) or _PassArg.from_obj(func) is not None:
                context = new_context(env, None, {}, scope, True, None, None)
                return env.call(context, func, *call_args, **call_kwargs)  # type: ignore[attr-defined]
            try:
                return func(*call_args, **call_kwargs)
            except StopIteration:
                return undefined(_STOP_ITERATION)

        return invoke

    def _constant_method(self, node: nodes.Call) -> Callable[..., Any] | None:
        """``dict.get`` of a constant dict of plain values, as the sandbox hands it out."""
        target = node.node
        if not (
            isinstance(target, nodes.Getattr)
            and target.attr == "get"
            and isinstance(target.node, nodes.Const)
            and type(target.node.value) is dict
        ):
            return None
        value = target.node.value
        if not (_constant_ok(value) and all(_immutable(v) for v in value.values())):
            return None
        method = self.env.getattr(value, "get")
        if (
            type(method) is not BuiltinMethodType
            or method.__self__ is not value
            or not self.env.is_safe_callable(method)  # type: ignore[attr-defined]
            or _PassArg.from_obj(method) is not None
        ):
            return None
        return method

    # -- operators ------------------------------------------------------------------

    def cond(self, node: nodes.CondExpr) -> Evaluate:
        test = self.expr(node.test)
        then = self.expr(node.expr1)
        if node.expr2 is not None:
            otherwise = self.expr(node.expr2)
            return lambda scope: then(scope) if test(scope) else otherwise(scope)
        hint = (
            f"the inline if-expression on line {node.lineno} evaluated to false and"
            " no else section was defined."
        )
        return lambda scope: then(scope) if test(scope) else Undefined(hint)

    def compare(self, node: nodes.Compare) -> Evaluate:
        first = self.expr(node.expr)
        ops = [(_COMPARE[op.op], self.expr(op.expr)) for op in node.ops]
        if len(ops) == 1:
            ((compare, right),) = ops
            return lambda scope: compare(first(scope), right(scope))

        def chain(scope: dict[str, Any]) -> Any:
            # Python's `a < b < c`: b evaluated once, the first false result ends it.
            left = first(scope)
            result: Any = True
            for compare, right in ops:
                value = right(scope)
                result = compare(left, value)
                if not result:
                    return result
                left = value
            return result

        return chain

    def logic(self, node: nodes.And | nodes.Or) -> Evaluate:
        left = self.expr(node.left)
        right = self.expr(node.right)
        if isinstance(node, nodes.And):
            return lambda scope: left(scope) and right(scope)
        return lambda scope: left(scope) or right(scope)

    def binary(self, node: nodes.BinExpr) -> Evaluate:
        if node.operator in self.env.intercepted_binops:  # type: ignore[attr-defined]
            raise _Unsupported("intercepted operator")
        func = _BINARY[type(node)]
        left = self.expr(node.left)
        right = self.expr(node.right)
        return lambda scope: func(left(scope), right(scope))

    def unary(self, node: nodes.UnaryExpr) -> Evaluate:
        if node.operator in self.env.intercepted_unops:  # type: ignore[attr-defined]
            raise _Unsupported("intercepted operator")
        value = self.expr(node.node)
        if isinstance(node, nodes.Not):
            return lambda scope: not value(scope)
        func = _UNARY[type(node)]
        return lambda scope: func(value(scope))

    def concat(self, node: nodes.Concat) -> Evaluate:
        items = [self.expr(n) for n in node.nodes]
        join = self.env.text_concat  # type: ignore[attr-defined]
        return lambda scope: join(tuple([item(scope) for item in items]))


_HANDLERS: dict[type[nodes.Node], Callable[[_Compiler, Any], Evaluate]] = {
    nodes.Const: _Compiler.const,
    nodes.Name: _Compiler.name,
    nodes.List: _Compiler.sequence,
    nodes.Tuple: _Compiler.sequence,
    nodes.Dict: _Compiler.dict_,
    nodes.Getattr: _Compiler.getattr_,
    nodes.Getitem: _Compiler.getitem,
    nodes.Filter: _Compiler.filter_or_test,
    nodes.Test: _Compiler.filter_or_test,
    nodes.Call: _Compiler.call,
    nodes.CondExpr: _Compiler.cond,
    nodes.Compare: _Compiler.compare,
    nodes.And: _Compiler.logic,
    nodes.Or: _Compiler.logic,
    nodes.Not: _Compiler.unary,
    nodes.Neg: _Compiler.unary,
    nodes.Pos: _Compiler.unary,
    nodes.Concat: _Compiler.concat,
    **{kind: _Compiler.binary for kind in _BINARY},
}
