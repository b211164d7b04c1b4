"""Expression templates as plain Python functions: Jinja's generated code, minus its machinery.

Most mapping templates are one ``{{ expression }}`` (``record.login``,
``record.mail | multi(type='work')``, ``status == 'enabled'``). Jinja renders
each through a generator, a :class:`~jinja2.runtime.Context` and a list of
pieces; for a record of a dozen fields that machinery costs more than the
expressions. :func:`compile_output` writes such a template as one Python
function of the render scope (the dict
:class:`~gateway.mapping.sandbox.SharedRender` holds) whose expression is the
one Jinja's code generator writes, node for node, in the same order:

* names are read from the scope; an unknown one is the environment's
  (strict) undefined, made where Jinja makes it;
* attributes and items go through ``env.getattr``/``env.getitem``, so the
  sandbox decides. Two lookups whose answer is known skip the call: a
  :class:`LegacyRecord` field (``MappingEnvironment.getattr``'s own shortcut)
  and a sub-attribute of a SCIM value (:class:`AttrObject` has no attribute of
  that name, so the sandbox would subscribe it);
* filters and tests are the environment's own callables; for the strict
  wrapper of ``sandbox._strict`` its checks are made inline, in its order,
  before the function it wraps is called. Calls go through the sandbox's
  ``is_safe_callable`` and Jinja's ``Context.call`` rules;
* constants, operators, comparisons, ``and``/``or``/``not``, ``if``/``else``,
  literals and slices are the same Python Jinja writes; constant subtrees are
  folded where Jinja's code generator folds them (its own optimizer runs on the
  same nodes), quirks included.

Anything else (statements, ``self``, ``sameas``, filters that want the
context, ``*args``, intercepted operators, ...) is not compiled: the template
keeps rendering through Jinja. No text of the template reaches the generated
source but through ``repr`` of a ``str`` (names, attribute names, keys):
everything else is bound by name in the function's globals.
tests/mapping/test_pyexpr.py checks each node kind and
tests/fuzz/test_mapping_fuzz.py compares both paths on every shipped template.
"""

from __future__ import annotations

import copy
import keyword
import math
from collections.abc import Callable
from types import BuiltinMethodType
from typing import Any, cast

from jinja2 import nodes
from jinja2.compiler import has_safe_repr, operators
from jinja2.environment import Environment
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.optimizer import Optimizer
from jinja2.runtime import Undefined, new_context
from jinja2.utils import _PassArg, missing

from gateway.mapping.context import AttrObject, LegacyRecord, Variables

__all__ = ["STRICT_INNER", "Evaluate", "compile_output"]

#: The attribute naming the function a strict filter/test wrapper (sandbox._strict) calls
#: once no argument is a strict undefined: compiled calls check inline and call it.
STRICT_INNER = "_mapping_strict_inner"

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
_BINARY = {
    nodes.Add: "+",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Pow: "**",
    nodes.Mod: "%",
    nodes.And: "and",
    nodes.Or: "or",
}
_UNARY = {nodes.Neg: "-", nodes.Pos: "+", nodes.Not: "not "}
_STOP_ITERATION = "value was undefined because a callable raised a StopIteration exception"
#: Constants written as literals; any other constant is bound by name.
_LITERALS = frozenset({bool, int, str})


class _Unsupported(Exception):
    """A node the generated code does not reproduce: the template renders through Jinja."""


def compile_output(env: Environment, text: str) -> tuple[Evaluate, bool] | None:
    """``text`` (a stripped template) as a function, and whether it is one expression.

    One expression: the function gives its raw value (``to_data`` is the caller's).
    Text and expressions mixed: the pieces joined as ``text_concat`` joins them,
    stripped. None when the template has statements or anything not compiled.
    """
    tree = env.parse(text)  # a tree of our own: Jinja's optimizer changes it in place
    body = tree.body
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    children = body[0].nodes
    writer = _Writer(env)
    try:
        pieces = [writer.output(child) for child in children]
    except _Unsupported:
        return None
    single = len(children) == 1 and not isinstance(children[0], nodes.TemplateData)
    if single:
        result = pieces[0]
    else:
        joined = "".join(f"{p}, " for p in pieces)
        result = f"{writer.bind(env.text_concat, 'concat')}(({joined})).strip()"  # type: ignore[attr-defined]
    return writer.function(result), single


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


def _strict_check(name: str) -> str:
    """What sandbox._strict does to one argument, as an expression (False, or it raises)."""
    return (
        f"(isinstance({name}, Undefined) and type({name}) is not Undefined"
        f" and {name}._fail_with_undefined_error())"
    )


class _Writer:
    """One template's nodes as Python source, mirroring jinja2.compiler.CodeGenerator."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.eval_ctx = EvalContext(env, None)
        self.optimizer = Optimizer(env)
        self.namespace: dict[str, Any] = {
            "Undefined": Undefined,
            "LegacyRecord": LegacyRecord,
            "AttrObject": AttrObject,
            "Variables": Variables,
            "AS_IS": frozenset({str, int, float, bool}),  # what context._wrap leaves alone
            "missing": missing,
            "undefined": env.undefined,
            "environment": env,
            "getattr_": env.getattr,
            "getitem_": env.getitem,
            "deepcopy": copy.deepcopy,
        }
        self.names: dict[str, str] = {}  # template name -> local holding it (or missing)
        self.count = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def bind(self, value: Any, prefix: str = "c") -> str:
        name = self.fresh(f"_{prefix}")
        self.namespace[name] = value
        return name

    def function(self, result: str) -> Evaluate:
        # Names are resolved first, as Jinja's root function resolves them.
        lines = ["def evaluate(scope):"]
        for name, local in self.names.items():
            lines.append(f"    {local} = scope[{name!r}] if {name!r} in scope else missing")
        lines.append(f"    return {result}")
        code = compile("\n".join(lines), "<mapping template>", "exec")
        exec(code, self.namespace)  # our own source: see the module docstring
        found: Evaluate = self.namespace["evaluate"]
        return found

    def output(self, node: nodes.Node) -> str:
        if isinstance(node, nodes.TemplateData):
            return self.constant(node.as_const(self.eval_ctx))
        # The finalize function needs the eval context, so Jinja folds no output child
        # itself; the identity finalize is left out.
        return self.expr(node)

    def expr(self, node: nodes.Node) -> str:
        if isinstance(node, _FOLDED):
            folded = self.optimizer.visit(node, self.eval_ctx)
            if folded != node:
                return self.expr(folded)
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise _Unsupported(type(node).__name__)
        return handler(self, node)

    # -- literals and names ---------------------------------------------------------

    def constant(self, value: Any) -> str:
        if not _constant_ok(value):
            raise _Unsupported("constant")
        if value is None or type(value) in _LITERALS:
            return repr(value)
        if _immutable(value):
            return self.bind(value)
        # Jinja writes the constant's repr: a fresh list or dict each time.
        return f"deepcopy({self.bind(value)})"

    def const(self, node: nodes.Const) -> str:
        return self.constant(node.value)

    def name(self, node: nodes.Name) -> str:
        if node.ctx != "load" or node.name == "self":  # `self` is a TemplateReference
            raise _Unsupported("name")
        local = self.names.get(node.name)
        if local is None:
            local = self.names[node.name] = self.fresh("n")
        return f"(undefined(name={node.name!r}) if {local} is missing else {local})"

    def tuple_(self, node: nodes.Tuple) -> str:
        if node.ctx != "load":
            raise _Unsupported("tuple")
        items = [self.expr(item) for item in node.items]
        return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"  # () if none

    def list_(self, node: nodes.List) -> str:
        return f"[{', '.join(self.expr(item) for item in node.items)}]"

    def dict_(self, node: nodes.Dict) -> str:
        pairs = [f"{self.expr(p.key)}: {self.expr(p.value)}" for p in node.items]
        return f"{{{', '.join(pairs)}}}"

    # -- access -------------------------------------------------------------------------

    def getattr_(self, node: nodes.Getattr) -> str:
        target = self.expr(node.node)
        attribute = repr(node.attr)
        if node.attr.startswith("_"):
            return f"getattr_({target}, {attribute})"
        obj = self.fresh("t")
        kind = self.fresh("k")
        # Types whose sandboxed getattr of this name is known to be a subscription:
        # LegacyRecord by MappingEnvironment.getattr's own shortcut. AttrObject when it has
        # no attribute of the name: the sandbox fails over to subscribing it, which cannot
        # raise a LookupError (__missing__ raises). Variables likewise: its __getattr__
        # subscribes it, and a field value is always a safe attribute.
        kinds = ["LegacyRecord"]
        if not hasattr(AttrObject, node.attr):
            kinds.append("AttrObject")
        if not hasattr(Variables, node.attr):
            kinds.append("Variables")
        test = " or ".join(f"{kind} is {k}" for k in kinds)
        general = f"({obj}[{attribute}] if {test} else getattr_({obj}, {attribute}))"
        # A record's field holding a plain value is read as LegacyRecord.__getitem__ reads
        # it, without the call; any other case is left to that method.
        data, field = self.fresh("d"), self.fresh("v")
        return (
            f"({field} if ({kind} := type({obj} := {target})) is LegacyRecord"
            f" and {attribute} in ({data} := {obj}._data)"
            f" and (({field} := {data}[{attribute}]) is None or type({field}) in AS_IS)"
            f" else {general})"
        )

    def getitem(self, node: nodes.Getitem) -> str:
        if node.ctx != "load":
            raise _Unsupported("getitem")
        target = self.expr(node.node)
        arg = node.arg
        if isinstance(arg, nodes.Slice):  # Jinja subscripts slices directly
            text = "" if arg.start is None else self.expr(arg.start)
            text += ":"
            if arg.stop is not None:
                text += self.expr(arg.stop)
            if arg.step is not None:
                text += ":" + self.expr(arg.step)
            return f"{target}[{text}]"
        return f"getitem_({target}, {self.expr(arg)})"

    # -- filters, tests, calls ------------------------------------------------------

    def _arguments(
        self, node: nodes.Filter | nodes.Test | nodes.Call
    ) -> tuple[list[tuple[str, bool]], list[tuple[str, str, bool]]]:
        """Positional and keyword arguments: source, and whether a constant (never undefined)."""
        if node.dyn_args is not None or node.dyn_kwargs is not None:
            raise _Unsupported("*args")
        args = [(self.expr(a), isinstance(a, nodes.Const)) for a in node.args]
        kwargs = [
            (cast(str, k.key), self.expr(k.value), isinstance(k.value, nodes.Const))
            for k in node.kwargs
        ]
        for key, _, _ in kwargs:
            # Jinja passes a Python keyword as **{...}; a leading _ may be Context.call's
            # own (_loop_vars) or the helper's: both stay with Jinja.
            if not key.isidentifier() or keyword.iskeyword(key) or key.startswith("_"):
                raise _Unsupported("keyword")
        return args, kwargs

    def filter_or_test(self, node: nodes.Filter | nodes.Test) -> str:
        if node.node is None:  # a filter block
            raise _Unsupported("filter block")
        is_filter = isinstance(node, nodes.Filter)
        if not is_filter and node.name == "sameas":  # identity: constants are copies here
            raise _Unsupported("sameas")
        pool = self.env.filters if is_filter else self.env.tests
        func = cast(Callable[..., Any] | None, pool.get(node.name))
        if func is None:  # fails at render time in Jinja (in an if-expression)
            raise _Unsupported("unknown filter or test")
        pass_arg = _PassArg.from_obj(func)
        if pass_arg is _PassArg.context:
            raise _Unsupported("pass_context")
        value = self.expr(node.node)
        args, kwargs = self._arguments(node)
        head = {
            _PassArg.environment: "environment",
            # A context's eval context: made with it, for a template without a name.
            _PassArg.eval_context: f"{self.bind(EvalContext, 'evalctx')}(environment, None)",
        }.get(pass_arg)  # type: ignore[arg-type]
        inner = getattr(func, STRICT_INNER, None)
        if inner is None:
            parts = [value, *(a for a, _ in args), *(f"{k}={v}" for k, v, _ in kwargs)]
            if head is not None:
                parts.insert(0, head)
            return f"{self.bind(func, 'f')}({', '.join(parts)})"
        # sandbox._strict: every argument evaluated, then each checked in order (a strict
        # undefined fails; the plain one of an implicit else passes), then the call. The
        # environment or eval context Jinja passes first is never undefined.
        keys = [None] * (1 + len(args)) + [k for k, _, _ in kwargs]
        sources = [(value, False), *args, *((v, c) for _, v, c in kwargs)]
        if head is not None:
            keys.insert(0, None)
            sources.insert(0, (head, True))
        assigned: list[str] = []
        checks: list[str] = []
        call_args: list[str] = []
        for key, (source, constant) in zip(keys, sources, strict=True):
            temp = self.fresh("a")
            assigned.append(f"({temp} := {source})")
            if not constant:
                checks.append(_strict_check(temp))
            call_args.append(temp if key is None else f"{key}={temp}")
        call = f"{self.bind(inner, 'f')}({', '.join(call_args)})"
        test = f"({', '.join(assigned)},)"
        if checks:
            test += f" and not ({' or '.join(checks)})"
        return f"({call} if {test} else None)"

    def call(self, node: nodes.Call) -> str:
        args, kwargs = self._arguments(node)
        method = self._constant_method(node)
        if method is not None and not kwargs:
            # `{'y': true, 'n': false}.get(x)`: the sandbox's answers for a constant
            # receiver (the method is safe, takes no context) are known now.
            return f"{self.bind(method, 'm')}({', '.join(a for a, _ in args)})"
        target = self.expr(node.node)
        parts = [target, "scope", *(a for a, _ in args), *(f"{k}={v}" for k, v, _ in kwargs)]
        return f"{self.bind(self._caller(), 'call')}({', '.join(parts)})"

    def _caller(self) -> Callable[..., Any]:
        env = self.env
        safe = env.is_safe_callable  # type: ignore[attr-defined]
        undefined = env.undefined

        def call(__func: Any, __scope: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
            # SandboxedEnvironment.call, then Context.call.
            if not safe(__func):
                raise SecurityError(f"{__func!r} is not safely callable")
            if (
                hasattr(__func, "__call__")  # noqa: B004 - Context.call's own test
                and _PassArg.from_obj(__func.__call__) is not None
            ) or _PassArg.from_obj(__func) is not None:
                context = new_context(env, None, {}, __scope, True, None, None)
                return env.call(context, __func, *args, **kwargs)  # type: ignore[attr-defined]
            try:
                return __func(*args, **kwargs)
            except StopIteration:
                return undefined(_STOP_ITERATION)

        return call

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

    def cond(self, node: nodes.CondExpr) -> str:
        then = self.expr(node.expr1)
        test = self.expr(node.test)
        if node.expr2 is not None:
            otherwise = self.expr(node.expr2)
        else:
            hint = (
                f"the inline if-expression on line {node.lineno} evaluated to false and"
                " no else section was defined."
            )
            otherwise = f"Undefined({hint!r})"
        return f"({then} if {test} else {otherwise})"

    def compare(self, node: nodes.Compare) -> str:
        text = self.expr(node.expr)
        for op in node.ops:
            text += f" {operators[op.op]} {self.expr(op.expr)}"
        return f"({text})"

    def binary(self, node: nodes.BinExpr) -> str:
        if node.operator in self.env.intercepted_binops:  # type: ignore[attr-defined]
            raise _Unsupported("intercepted operator")
        return f"({self.expr(node.left)} {_BINARY[type(node)]} {self.expr(node.right)})"

    def unary(self, node: nodes.UnaryExpr) -> str:
        if node.operator in self.env.intercepted_unops:  # type: ignore[attr-defined]
            raise _Unsupported("intercepted operator")
        return f"({_UNARY[type(node)]}{self.expr(node.node)})"

    def concat(self, node: nodes.Concat) -> str:
        items = "".join(f"{self.expr(n)}, " for n in node.nodes)
        return f"environment.text_concat(({items}))"


_HANDLERS: dict[type[nodes.Node], Callable[[_Writer, Any], str]] = {
    nodes.Const: _Writer.const,
    nodes.Name: _Writer.name,
    nodes.List: _Writer.list_,
    nodes.Tuple: _Writer.tuple_,
    nodes.Dict: _Writer.dict_,
    nodes.Getattr: _Writer.getattr_,
    nodes.Getitem: _Writer.getitem,
    nodes.Filter: _Writer.filter_or_test,
    nodes.Test: _Writer.filter_or_test,
    nodes.Call: _Writer.call,
    nodes.CondExpr: _Writer.cond,
    nodes.Compare: _Writer.compare,
    nodes.Concat: _Writer.concat,
    **{kind: _Writer.binary for kind in _BINARY},
    **{kind: _Writer.unary for kind in _UNARY},
}
