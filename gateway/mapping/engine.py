"""Template mappings: one YAML file per resource type, Jinja templates both ways.

A mapping is a directory holding ``user.yaml`` and/or ``group.yaml`` (a type
without a file is not offered by the app). Each file has:

``to_legacy``
    legacy field -> template over the SCIM resource (attributes by canonical name);
``from_legacy``
    SCIM attribute path -> template over ``record``, the legacy record;
``fields``
    SCIM attribute path -> the legacy field holding a plain copy of it, so
    filters and sorts can be pushed down;
``defaults``
    legacy field -> constant used when its template gives no value;
``record_fields``
    optional list of the legacy record's fields; when given, a from_legacy
    template naming any other field fails the start-up check;
``required``
    optional list of SCIM attributes the legacy app cannot do without: the
    app's ``/Schemas`` marks them required, and the gateway refuses a
    resource without them;
``vars``
    optional name -> constant that templates of both directions read as
    ``vars.name``, for what differs between installations of one app (the id
    of a custom field); strings may hold ``${env:NAME}`` and ``${file:PATH}``
    references, resolved when the mapping is loaded.

:func:`load_mapping` compiles every template and renders each one against an
empty and a fully populated sample; every problem is reported with the file,
the line and the field. docs/mappings.md is the user's guide.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from gateway.config import resolve_secret
from gateway.errors import InvalidValue, ScimError
from gateway.mapping.context import (
    NOT_MAPPED,
    LegacyRecord,
    Variables,
    did_you_mean,
    sample_resource,
    scim_variables,
    scim_variables_of,
)
from gateway.mapping.files import Entry, YamlFile
from gateway.mapping.filters import FilterValueError
from gateway.mapping.pyexpr import Evaluate
from gateway.mapping.references import record_fields, references, scim_paths
from gateway.mapping.sandbox import (
    CompiledTemplate,
    MappingEnvironment,
    SharedRender,
    TemplateShapeError,
    to_data,
)
from gateway.scim.resource import coerce_value, is_empty, lookup_key
from gateway.scim.schema import (
    ENTERPRISE_URN,
    Attribute,
    Resolved,
    ResourceType,
    build_resource_types,
)

__all__ = [
    "MAPPINGS_DIR",
    "MappingError",
    "MappingRenderError",
    "TemplateMapping",
    "TypeMapping",
    "load_mapping",
    "resolve_mapping_dir",
]

#: The repository's top-level folder of shipped mappings.
MAPPINGS_DIR = Path(__file__).resolve().parents[2] / "mappings"

FILES = {"user": "User", "group": "Group"}
SECTIONS = (
    "resource",
    "to_legacy",
    "from_legacy",
    "fields",
    "defaults",
    "record_fields",
    "required",
    "vars",
)
#: A ``vars:`` name: templates read it as ``vars.name``.
_VAR_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NO_VARS: Mapping[str, Any] = MappingProxyType({})
#: Paths a ``fields`` entry may name although no from_legacy template gives them:
#: the gateway fills them from the adapter's Record.
_RECORD_PATHS = frozenset({"id", "meta.created", "meta.lastmodified"})


class MappingError(Exception):
    """A mapping that cannot be used; each line of the message names file, line and field."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


class MappingRenderError(ScimError):
    """A template failed on a live request or record (500); the detail names the field, no value."""

    status = 500


@dataclass(frozen=True, slots=True)
class Field:
    """One template of a mapping file."""

    section: str  # "to_legacy" or "from_legacy"
    name: str  # the legacy field, or the SCIM path as written
    line: int
    file: Path
    template: CompiledTemplate
    target: Resolved | None = None  # from_legacy: where the value goes
    path: str = ""  # from_legacy: lower-case canonical SCIM path

    @property
    def label(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: {self.label}"

    def failed(self, exc: Exception) -> MappingRenderError:
        # Messages of these are built from names only; others may quote data.
        safe = isinstance(exc, TemplateError | FilterValueError | TemplateShapeError)
        reason = str(exc) if safe else type(exc).__name__
        short = f"{self.file.parent.name}/{self.file.name}:{self.line}"
        return MappingRenderError(f"the app's mapping failed at {self.label} ({short}): {reason}")


def _lower_path(container: str | None, attr: Attribute, sub: Attribute | None = None) -> str:
    head = f"{container}:{attr.name}" if container else attr.name
    return (f"{head}.{sub.name}" if sub else head).lower()


def resolve_path(rtype: ResourceType, key: str) -> Resolved | None:
    """A SCIM path as a mapping file writes it: plain, dotted, with its URN, or ``enterprise.x``."""
    text = key.strip()
    if text.lower().startswith(("enterprise.", "enterprise:")):
        if rtype.extension(ENTERPRISE_URN) is None:
            return None
        text = f"{ENTERPRISE_URN}:{text[len('enterprise.') :]}"
    found = lookup_key(rtype, text)
    return found if isinstance(found, Resolved) else None


# -- values both ways -----------------------------------------------------------------


_SINGLE: dict[int, Attribute] = {}


def _single(attr: Attribute) -> Attribute:
    """``attr`` as a single value (an element of a multi-valued one), made once per attribute."""
    if not attr.multi_valued:
        return attr
    found = _SINGLE.get(id(attr))
    if found is None:
        # Attributes live as long as the schema tables; keep the original alive with its copy.
        found = _SINGLE[id(attr)] = replace(attr, multi_valued=False, description=attr.description)
        _KEEP.append(attr)
    return found


_KEEP: list[Attribute] = []


def _coerce_one(attr: Attribute, value: Any, label: str) -> Any:
    if is_empty(value):
        return None
    if attr.type != "complex":
        try:
            return coerce_value(_single(attr), value, label=label)
        except InvalidValue as exc:
            raise TemplateShapeError(exc.detail) from None
    if not isinstance(value, Mapping):
        if attr.sub("value") is None or isinstance(value, list):
            raise TemplateShapeError(f"{label} must be an object")
        value = {"value": value}
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub(key) if isinstance(key, str) else None
        if sub is None:
            names = [s.name for s in attr.sub_attributes.values()]
            hint = did_you_mean(str(key), names)
            raise TemplateShapeError(f"{label} has no sub-attribute {key!r}{hint}")
        coerced = _coerce_one(sub, item, f"{label}.{sub.name}")
        if coerced is not None:
            out[sub.name] = coerced
    return out or None


def scim_value(target: Resolved, value: Any) -> Any:
    """A from_legacy result as the SCIM attribute's type; None for no value.

    Strings "true"/"false" become booleans, numbers strings where the
    attribute is a string, a plain value of a complex attribute its
    ``value``; elements of a multi-valued attribute without a ``value`` are
    dropped.
    """
    attr = target.target
    if type(value) is str and attr.type == "string" and not attr.multi_valued:
        return value or None  # the common case, a copied text field: itself, or no value
    label = target.dotted
    if is_empty(value):
        return None
    if not attr.multi_valued:
        if isinstance(value, list):
            raise TemplateShapeError(f"{label} takes one value; the template gives a list")
        return _coerce_one(attr, value, label)
    items = value if isinstance(value, list) else [value]
    out = [c for item in items if (c := _coerce_one(attr, item, label)) is not None]
    if attr.type == "complex" and attr.sub("value") is not None:
        out = [element for element in out if "value" in element]
    return out or None


def _put(out: dict[str, Any], target: Resolved, value: Any) -> None:
    holder = out if target.container is None else out.setdefault(target.container, {})
    if target.sub is None:
        holder[target.attribute.name] = value
    else:
        holder.setdefault(target.attribute.name, {})[target.sub.name] = value


# -- the same, with the per-attribute work done when the mapping is loaded ------------------
#
# from_legacy runs on every resource the gateway returns. What scim_value, _coerce_one
# and _put work out from the attribute on each call (its type, its sub-attributes, its
# label, where the value goes) is worked out once here; a value the shortcuts do not
# cover goes through the functions above, so results and errors are theirs.
# tests/mapping/test_field_plan.py compares both on random values.

Convert = Callable[[Any], Any]
Put = Callable[[dict[str, Any], Any], None]
#: SCIM types whose values of this Python type coerce to themselves ("" to no value).
_AS_IS_TYPE: dict[str, type] = {"string": str, "boolean": bool}


def _coercer(attr: Attribute, label: str) -> Convert:
    """``_coerce_one(attr, value, label)`` as a function of ``value``."""
    if attr.type == "complex":
        # Each sub-attribute: its name, the type of value it keeps as is (str: "" is no
        # value, bool), and its coercer for any other value.
        subs = {
            key: (
                sub.name,
                None if sub.multi_valued else _AS_IS_TYPE.get(sub.type),
                _coercer(sub, f"{label}.{sub.name}"),
            )
            for key, sub in attr.sub_attributes.items()
        }

        def coerce_complex(value: Any) -> Any:
            if type(value) is not dict:
                return _coerce_one(attr, value, label)
            out: dict[str, Any] = {}
            for key, item in value.items():
                found = subs.get(key) if type(key) is str else None  # keys are lower-case
                if found is None:
                    found = subs.get(key.lower()) if isinstance(key, str) else None
                    if found is None:  # the general path fails the same way
                        return _coerce_one(attr, value, label)
                if item is not None:  # None is no value: _coerce_one gives None
                    name, as_is, coerce = found
                    if type(item) is as_is:  # the sub's coercer's own shortcut, inline
                        coerced = item if as_is is bool else (item or None)
                    else:
                        coerced = coerce(item)
                    if coerced is not None:
                        out[name] = coerced
            return out or None

        return coerce_complex
    plain = _AS_IS_TYPE.get(attr.type)
    if plain is str:

        def coerce_string(value: Any) -> Any:
            if type(value) is str:
                return value or None  # "" is no value; any other text is itself
            return _coerce_one(attr, value, label)

        return coerce_string
    if plain is bool:

        def coerce_boolean(value: Any) -> Any:
            return value if type(value) is bool else _coerce_one(attr, value, label)

        return coerce_boolean
    return lambda value: _coerce_one(attr, value, label)


_PLAIN = frozenset({str, bool, int})


def _plain_list(value: Any) -> bool:
    """A list of plain objects of plain values: JSON data as it is (what ``multi`` gives)."""
    if type(value) is not list:
        return False
    for item in value:
        if type(item) is dict:
            for key, sub in item.items():
                if type(key) is not str or not (sub is None or type(sub) in _PLAIN):
                    return False
        elif not (item is None or type(item) in _PLAIN):
            return False
    return True


def scim_converter(target: Resolved) -> Convert:
    """``scim_value(target, to_data(value))`` as a function of ``value``."""
    attr = target.target
    label = target.dotted
    coerce = _coercer(attr, label)
    if not attr.multi_valued:
        as_is = _AS_IS_TYPE.get(attr.type)

        def convert_single(value: Any) -> Any:
            if type(value) is as_is:  # a copied text field or a flag: itself ("": none)
                return value if as_is is bool else (value or None)
            value = to_data(value)
            if is_empty(value):
                return None
            if isinstance(value, list):
                raise TemplateShapeError(f"{label} takes one value; the template gives a list")
            return coerce(value)

        return convert_single
    keep_valued = attr.type == "complex" and attr.sub("value") is not None

    def convert_multi(value: Any) -> Any:
        if not _plain_list(value):  # else to_data would give an equal copy
            value = to_data(value)
        if is_empty(value):
            return None
        out = []
        # Each element coerced in turn, as scim_value does; dropping an element without
        # a value cannot fail, so it is done on the way.
        for item in value if isinstance(value, list) else [value]:
            coerced = coerce(item)
            if coerced is not None and (not keep_valued or "value" in coerced):
                out.append(coerced)
        return out or None

    return convert_multi


def putter(target: Resolved) -> Put:
    """``_put(out, target, value)`` as a function of ``out`` and ``value``."""
    container = target.container
    name = target.attribute.name
    if target.sub is None:
        if container is None:

            def put_top(out: dict[str, Any], value: Any) -> None:
                out[name] = value

            return put_top
        return lambda out, value: _put(out, target, value)
    sub = target.sub.name
    if container is None:

        def put_sub(out: dict[str, Any], value: Any) -> None:
            holder = out[name] if name in out else out.setdefault(name, {})
            holder[sub] = value

        return put_sub
    return lambda out, value: _put(out, target, value)


# -- one resource type ----------------------------------------------------------------

#: A to_legacy field, its name, and its template as a function of the scope (None: Jinja).
_ToStep = tuple[Field, str, Evaluate | None]
#: A from_legacy field; the record field it copies, when it is ``{{ record.x }}`` and
#: compiled (read without a scope); its template as above; its scim_converter and putter.
_FromStep = tuple[Field, str | None, Evaluate | None, Convert, Put]
#: Field values LegacyRecord hands out as they are (context._wrap leaves them alone).
_AS_IS = frozenset({str, int, float, bool})


def _scim_scope(
    env: MappingEnvironment, rtype: ResourceType, resource: Mapping[str, Any]
) -> dict[str, Any]:
    return env.scope(scim_variables(rtype, resource))


def _constant(template: CompiledTemplate) -> Evaluate | None:
    """A constant's value as a function of the scope; None for a template."""
    if template.template is not None:
        return None
    constant = template.constant
    return lambda scope: constant


@dataclass(frozen=True, slots=True)
class TypeMapping:
    """The mapping of one resource type, loaded and checked."""

    rtype: ResourceType  # the full RFC type: templates may name any attribute
    env: MappingEnvironment
    file: Path
    to_legacy_fields: tuple[Field, ...]
    from_legacy_fields: tuple[Field, ...]
    fields: Mapping[str, str]  # lower-case canonical SCIM path -> legacy field
    defaults: Mapping[str, Any]
    known_record_fields: frozenset[str] | None  # None: any field may be named
    attributes: frozenset[str]
    #: Lower-case SCIM paths the app requires (an attribute and, dotted, its sub-attributes).
    required: frozenset[str] = frozenset()
    #: The file's ``vars:``, references resolved; templates read them as ``vars.name``.
    vars: Mapping[str, Any] = dataclass_field(default_factory=lambda: _NO_VARS)
    #: Per field, what to_legacy/from_legacy call: worked out once, in __post_init__.
    _to_steps: tuple[_ToStep, ...] = dataclass_field(init=False, repr=False, compare=False)
    _from_steps: tuple[_FromStep, ...] = dataclass_field(init=False, repr=False, compare=False)
    _variables: Variables = dataclass_field(init=False, repr=False, compare=False)
    _to_variables: Callable[[Mapping[str, Any]], dict[str, Any]] = dataclass_field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        to_steps = tuple(
            (f, f.name, f.template.evaluate or _constant(f.template)) for f in self.to_legacy_fields
        )
        if all(evaluate is not None for _, _, evaluate in to_steps):
            # Compiled templates read only the names they name: make only those variables.
            names = {
                n.name for f in self.to_legacy_fields for n in f.template.tree.find_all(nodes.Name)
            }
            variables = scim_variables_of(self.rtype, names, self.env.globals)
        else:  # Jinja renders some: they get every variable, as before
            variables = functools.partial(_scim_scope, self.env, self.rtype)
        object.__setattr__(self, "_to_variables", variables)
        from_steps = []
        for field in self.from_legacy_fields:
            assert field.target is not None
            evaluate = field.template.evaluate or _constant(field.template)
            copy_of = field.template.record_field if field.template.evaluate else None
            convert, put = scim_converter(field.target), putter(field.target)
            from_steps.append((field, copy_of, evaluate, convert, put))
        object.__setattr__(self, "_to_steps", to_steps)
        object.__setattr__(self, "_from_steps", tuple(from_steps))
        # Read-only to templates, so one serves every record.
        object.__setattr__(self, "_variables", Variables(self.vars))

    def record(self, data: Mapping[str, Any]) -> LegacyRecord:
        return LegacyRecord(data, self.known_record_fields)

    def to_legacy(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        scope = self._to_variables(resource)  # the globals and the SCIM variables
        scope["vars"] = self._variables
        shared: SharedRender | None = None
        out: dict[str, Any] = {}
        for field, name, evaluate in self._to_steps:
            try:
                if evaluate is not None:
                    value = evaluate(scope)
                    if value is None or type(value) is str:  # to_data's own; empty: ""
                        if value:
                            out[name] = value
                        continue
                    value = to_data(value)
                else:  # rendered by Jinja: one context for the resource's templates
                    if shared is None:
                        shared = SharedRender(scope)
                    value = shared.render(field.template)
            except Exception as exc:
                raise field.failed(exc) from None
            if not is_empty(value):
                out[name] = value
        for name, value in self.defaults.items():
            if name not in out:
                out[name] = copy.deepcopy(value)
        return out

    def from_legacy(self, record: Mapping[str, Any]) -> dict[str, Any]:
        scope: dict[str, Any] | None = None  # made for the first template that needs it
        shared: SharedRender | None = None
        out: dict[str, Any] = {}
        for field, copy_of, evaluate, convert, put in self._from_steps:
            try:
                if copy_of is not None:
                    # `{{ record.x }}`: what LegacyRecord's __getitem__ gives, read directly
                    # when the field holds a plain value (else by the record itself).
                    if copy_of in record:
                        raw = record[copy_of]
                        if raw is not None and type(raw) not in _AS_IS:
                            raw = self.record(record)[copy_of]
                    else:  # None, or the error of a field not in record_fields
                        raw = self.record(record)[copy_of]
                    value = convert(raw)
                    if value is not None:
                        put(out, value)
                    continue
                if scope is None:
                    scope = self.env.scope({"record": self.record(record), "vars": self._variables})
                if evaluate is not None:
                    value = convert(evaluate(scope))
                else:  # rendered by Jinja: one context for the record's templates
                    if shared is None:
                        shared = SharedRender(scope)
                    value = convert(shared.render(field.template))
            except Exception as exc:
                raise field.failed(exc) from None
            if value is not None:
                put(out, value)
        return out

    def legacy_field(self, path: str) -> str | None:
        low = path.lower()
        found = self.fields.get(low)
        if found is None and "." not in low.rpartition(":")[2]:
            found = self.fields.get(f"{low}.value")  # `emails eq x` compares emails.value
        if found is None:
            target = resolve_path(self.rtype, path)
            if target is not None and target.dotted.lower() != low:
                return self.legacy_field(target.dotted)
        return found


class TemplateMapping:
    """The :class:`gateway.mapping.Mapping` of an app, from a directory of YAML files."""

    def __init__(self, types: Mapping[str, TypeMapping], source: Path | None = None) -> None:
        self.types = dict(types)
        self.source = source

    def __repr__(self) -> str:
        return f"TemplateMapping({str(self.source)!r}, types={sorted(self.types)})"

    def _type(self, resource_type: str) -> TypeMapping:
        found = self.types.get(resource_type)
        if found is None:
            raise MappingRenderError(f"the app's mapping has no {resource_type} file")
        return found

    def to_legacy(self, resource_type: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        return self._type(resource_type).to_legacy(resource)

    def from_legacy(self, resource_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
        return self._type(resource_type).from_legacy(record)

    def legacy_field(self, resource_type: str, path: str) -> str | None:
        found = self.types.get(resource_type)
        return None if found is None else found.legacy_field(path)

    def attributes(self, resource_type: str) -> frozenset[str] | None:
        found = self.types.get(resource_type)
        return frozenset() if found is None else found.attributes

    def required(self, resource_type: str) -> frozenset[str]:
        found = self.types.get(resource_type)
        return frozenset() if found is None else found.required


# -- loading --------------------------------------------------------------------------


class _Unresolved(Exception):
    """A template read a variable whose reference could not be resolved (reported already)."""


class _CheckVariables(Variables):
    """``vars`` for the start-up renders: a variable that failed to resolve stops the render."""

    __slots__ = ("_failed",)

    def __init__(self, data: Mapping[str, Any], failed: frozenset[str]) -> None:
        super().__init__(data)
        self._failed = failed

    def __getitem__(self, key: str) -> Any:
        if key in self._failed:
            raise _Unresolved(key)
        return super().__getitem__(key)


_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")
_NO_FILTER = re.compile(r"^No (filter|test) named '([^']+)'")


def _describe(exc: Exception, env: MappingEnvironment, names: Iterable[str]) -> str:
    message = str(exc)
    if isinstance(exc, TemplateSyntaxError):
        where = f" (template line {exc.lineno})" if exc.lineno and exc.lineno > 1 else ""
        if (found := _NO_FILTER.match(message)) is not None:
            kind, name = found.groups()
            pool = env.filters if kind == "filter" else env.tests
            return f"unknown {kind} {name!r}{did_you_mean(name, list(pool))}{where}"
        return f"template syntax error: {message}{where}"
    if isinstance(exc, SecurityError):
        return f"refused by the sandbox: {message}"
    if isinstance(exc, UndefinedError):
        if (found := _UNDEFINED.match(message)) is None:
            return message
        if found.group(1) in NOT_MAPPED:
            return f"{message}: {found.group(1)} never goes through a mapping"
        return f"{message}{did_you_mean(found.group(1), list(names))}"
    if isinstance(exc, FilterValueError | TemplateShapeError):
        return message
    return f"{type(exc).__name__}: {message}"


class _Loader:
    """Builds one :class:`TypeMapping` from a file, collecting every problem found."""

    def __init__(self, file: YamlFile, type_name: str, env: MappingEnvironment) -> None:
        self.file = file
        self.path = file.path
        self.type_name = type_name
        self.env = env
        self.rtype = build_resource_types()[type_name]
        self.errors = file.errors

    def error(self, line: int, field: str, message: str) -> None:
        self.file.error(line, field, message)

    def compile(self, section: str, entry: Entry) -> CompiledTemplate | None:
        label = f"{section}.{entry.key}"
        value = self.file.value(entry.node)
        if value is None or isinstance(value, list | dict) or value == "":
            what = "is empty: give" if value in (None, "") else "must be"
            self.error(entry.line, label, f"{what} a template (a string) or a constant")
            return None
        try:
            return CompiledTemplate.compile(self.env, value)
        except (TemplateError, TemplateShapeError) as exc:
            self.error(entry.line, label, _describe(exc, self.env, ()))
            return None
        except ValueError:  # Jinja folds constants as it compiles: 10 ** 5000 has no text form
            self.error(entry.line, label, "a constant in the template is too large")
            return None
        except RecursionError:
            self.error(entry.line, label, "the template nests too deeply")
            return None

    def load(self) -> TypeMapping | None:
        root = self.file.root
        if root is None:
            return None
        sections = {e.key: e for e in self.file.entries(root, "", 1)}
        for key, entry in sections.items():
            if key not in SECTIONS:
                hint = did_you_mean(key, SECTIONS)
                self.error(entry.line, key, f"unknown section (known: {', '.join(SECTIONS)}){hint}")
        self._check_resource(sections.get("resource"))
        listed = self._record_fields(sections.get("record_fields"))
        variables, var_lines = self._vars(sections.get("vars"))
        given = _CheckVariables(variables, frozenset(var_lines) - set(variables))
        to_legacy = self._to_legacy(sections.get("to_legacy"))
        from_legacy = self._from_legacy(sections.get("from_legacy"))
        defaults = self._defaults(sections.get("defaults"))
        names = {f.name for f in to_legacy} | set(defaults)
        known = None if listed is None else frozenset(listed | names)
        self._check_vars_read(var_lines, to_legacy + from_legacy)
        sample = self._check_to_legacy(to_legacy, defaults, given)
        self._check_from_legacy(from_legacy, sample, known, given)
        attributes = self._attributes(to_legacy, from_legacy)
        read = set().union(*(record_fields(f.template.tree) for f in from_legacy))
        fields = self._fields(sections.get("fields"), from_legacy, names | read | (listed or set()))
        required = self._required(sections.get("required"), attributes)
        if self.errors:
            return None
        return TypeMapping(
            rtype=self.rtype,
            env=self.env,
            file=self.path,
            to_legacy_fields=tuple(to_legacy),
            from_legacy_fields=tuple(from_legacy),
            fields=fields,
            defaults=defaults,
            known_record_fields=known,
            attributes=attributes,
            required=required,
            vars=MappingProxyType(variables),
        )

    # -- sections -------------------------------------------------------------------

    def _check_resource(self, entry: Entry | None) -> None:
        if entry is None:
            return
        value = self.file.value(entry.node)
        if str(value).lower() != self.type_name.lower():
            self.error(
                entry.line,
                "resource",
                f"{self.path.name} maps {self.type_name}, not {value!r}",
            )

    def _record_fields(self, entry: Entry | None) -> set[str] | None:
        if entry is None:
            return None
        names = self.file.names(entry.node)
        if names is None:
            self.error(entry.line, "record_fields", "must be a list of legacy field names")
            return None
        return set(names)

    def _required(self, entry: Entry | None, carried: frozenset[str]) -> frozenset[str]:
        """``required:`` as lower-case paths; ``emails.value`` requires ``emails`` too."""
        if entry is None:
            return frozenset()
        names = self.file.names(entry.node)
        if names is None:
            self.error(entry.line, "required", "must be a list of SCIM attributes")
            return frozenset()
        out: set[str] = set()
        for name in names:
            target = resolve_path(self.rtype, name)
            if target is None:
                known = [a.name for c, a in self.rtype.attributes() if c is None]
                hint = did_you_mean(name.split(".")[0], known)
                self.error(entry.line, "required", f"{name}: unknown SCIM attribute{hint}")
                continue
            top = _lower_path(target.container, target.attribute)
            path = _lower_path(target.container, target.attribute, target.sub)
            if target.target.read_only or top in NOT_MAPPED:
                self.error(entry.line, "required", f"{name}: set by the gateway, not by clients")
            elif not _is_carried(path, set(carried)):
                self.error(
                    entry.line,
                    "required",
                    f"{name}: from_legacy does not give it, so it is not in the app's /Schemas",
                )
            else:
                out.update({top, path})
        return frozenset(out)

    def _vars(self, section: Entry | None) -> tuple[dict[str, Any], dict[str, int]]:
        """``vars:`` with its references resolved, and the line of each variable."""
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        if section is None:
            return values, lines
        for entry in self.file.entries(section.node, "vars", section.line):
            label = f"vars.{entry.key}"
            if not _VAR_NAME.match(entry.key):
                self.error(entry.line, label, "must be a name: letters, digits and _")
                continue
            lines[entry.key] = entry.line
            value = self.file.value(entry.node)
            if value is None or value == "":
                self.error(entry.line, label, "is empty")
            elif _holds_template(value):
                self.error(entry.line, label, "vars are constants, not templates")
            else:
                try:
                    resolved = _resolve_references(value)
                except ValueError as exc:  # names the variable or file, never a value
                    self.error(entry.line, label, str(exc))
                    continue
                if resolved == "":
                    self.error(entry.line, label, "is empty once its references are resolved")
                else:
                    values[entry.key] = resolved
        return values, lines

    def _check_vars_read(self, lines: Mapping[str, int], fields: list[Field]) -> None:
        """Every variable is read by some template (else it is likely misspelt somewhere)."""
        read: set[str] = set()
        for field in fields:
            for name, keys in references(field.template.tree):
                if name == "vars":
                    if not keys or keys[0] is None:
                        return  # read whole or by a computed name: any may be used
                    read.add(keys[0])
        for name, line in lines.items():
            if name not in read:
                self.error(line, f"vars.{name}", f"no template reads it (as vars.{name})")

    def _to_legacy(self, section: Entry | None) -> list[Field]:
        out: list[Field] = []
        if section is None:
            return out
        for entry in self.file.entries(section.node, "to_legacy", section.line):
            template = self.compile("to_legacy", entry)
            if template is not None:
                out.append(Field("to_legacy", entry.key, entry.line, self.path, template))
        return out

    def _from_legacy(self, section: Entry | None) -> list[Field]:
        if section is None:
            self.error(1, "from_legacy", "missing: a mapping must say how records become SCIM")
            return []
        out: list[Field] = []
        for entry in self.file.entries(section.node, "from_legacy", section.line):
            target = self._target(entry)
            template = self.compile("from_legacy", entry)
            if target is not None and template is not None:
                path = _lower_path(target.container, target.attribute, target.sub)
                out.append(
                    Field("from_legacy", entry.key, entry.line, self.path, template, target, path)
                )
        self._check_overlaps(out)
        if self.type_name == "User" and out and "username" not in {f.path for f in out}:
            self.error(section.line, "from_legacy", "must give userName (RFC 7643 requires it)")
        if not out and not self.errors:
            self.error(section.line, "from_legacy", "is empty")
        return out

    def _target(self, entry: Entry) -> Resolved | None:
        label = f"from_legacy.{entry.key}"
        target = resolve_path(self.rtype, entry.key)
        if target is None:
            names = [a.name for c, a in self.rtype.attributes() if c is None]
            hint = did_you_mean(entry.key.split(".")[0], names)
            self.error(entry.line, label, f"unknown SCIM attribute of {self.type_name}{hint}")
            return None
        if target.container is None and target.attribute.name in NOT_MAPPED:
            self.error(
                entry.line,
                label,
                f"{target.attribute.name} is set by the gateway, never by a mapping",
            )
            return None
        if target.sub is not None and target.attribute.multi_valued:
            self.error(
                entry.line,
                label,
                f"map the multi-valued {target.attribute.name} whole, as a list "
                f"(e.g. {target.attribute.name}: \"{{{{ record.x | multi(type='work') }}}}\")",
            )
            return None
        return target

    def _check_overlaps(self, fields: list[Field]) -> None:
        seen: dict[str, Field] = {}
        for field in fields:
            assert field.target is not None
            parent = _lower_path(field.target.container, field.target.attribute)
            other = seen.get(field.path) or (seen.get(parent) if field.target.sub else None)
            if other is None:
                other = next((f for p, f in seen.items() if p.startswith(field.path + ".")), None)
            if other is not None:
                self.error(field.line, field.label, f"overlaps from_legacy.{other.name}")
            seen[field.path] = field

    def _defaults(self, section: Entry | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if section is None:
            return out
        for entry in self.file.entries(section.node, "defaults", section.line):
            value = self.file.value(entry.node)
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                self.error(
                    entry.line, f"defaults.{entry.key}", "defaults are constants, not templates"
                )
            elif value is None:
                self.error(entry.line, f"defaults.{entry.key}", "is empty")
            else:
                out[entry.key] = value
        return out

    def _fields(
        self, section: Entry | None, from_legacy: list[Field], legacy: set[str]
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        if section is None:
            return out
        for entry in self.file.entries(section.node, "fields", section.line):
            label = f"fields.{entry.key}"
            target = resolve_path(self.rtype, entry.key)
            value = self.file.name(entry.node)
            if target is None:
                self.error(entry.line, label, f"unknown SCIM attribute of {self.type_name}")
                continue
            if value is None:
                self.error(entry.line, label, "must name a legacy field")
                continue
            path = _lower_path(target.container, target.attribute, target.sub)
            if value not in legacy:
                hint = did_you_mean(value, legacy)
                self.error(
                    entry.line,
                    label,
                    f"{value!r} is not a legacy field this mapping reads or writes{hint}",
                )
            elif path not in _RECORD_PATHS:
                self._check_plain_copy(entry, label, path, value, from_legacy)
            if path in out:
                self.error(entry.line, label, f"{target.dotted} is given twice")
            out[path] = value
        return out

    def _check_plain_copy(
        self, entry: Entry, label: str, path: str, legacy: str, from_legacy: list[Field]
    ) -> None:
        covering = [f for f in from_legacy if f.path == path or path.startswith(f.path + ".")]
        if not covering:
            self.error(entry.line, label, f"from_legacy does not give {entry.key}")
        elif not any(legacy in record_fields(f.template.tree) for f in covering):
            self.error(
                entry.line,
                label,
                f"from_legacy.{covering[0].name} does not read record.{legacy}, "
                f"so {entry.key} is not a plain copy of it",
            )

    def _attributes(self, to_legacy: list[Field], from_legacy: list[Field]) -> frozenset[str]:
        """What from_legacy gives, plus write-only attributes (password) to_legacy reads.

        ``members`` and ``groups`` are in too: they travel as Refs beside the
        mapping, and the adapter's capabilities say whether the app has them.
        """
        carried = {f.path for f in from_legacy}
        refs = {name for name in ("members", "groups") if name in self.rtype.schema.attributes}
        extra: set[str] = set()
        for field in to_legacy:
            for path in sorted(scim_paths(self.rtype, references(field.template.tree))):
                top = path.partition(".")[0]
                attr = self.rtype.schema.attributes.get(top)
                if top == "externalid" or (attr is not None and attr.mutability == "writeOnly"):
                    extra.add(top)
                elif not _is_carried(path, carried):
                    self.error(
                        field.line,
                        field.label,
                        f"reads {path}, which from_legacy does not give, so requests never "
                        "carry it (the app's /Schemas leaves it out); map it in from_legacy",
                    )
        return frozenset(carried | refs | (extra - {"externalid"}))

    # -- rendering checks -----------------------------------------------------------

    def _check_to_legacy(
        self, fields: list[Field], defaults: Mapping[str, Any], given: Variables
    ) -> dict[str, Any]:
        """Render against an empty and a full sample resource; the sample's legacy record.

        A template reading a variable that failed to resolve is not rendered: the
        variable's own error says what to fix.
        """
        empty = {**scim_variables(self.rtype, {}), "vars": given}
        full = {**scim_variables(self.rtype, sample_resource(self.rtype)), "vars": given}
        record: dict[str, Any] = dict(defaults)
        for field in fields:
            for variables in (empty, full):
                try:
                    value = field.template.render(variables)
                except _Unresolved:
                    break
                except Exception as exc:
                    self.error(field.line, field.label, _describe(exc, self.env, empty))
                    break
                if variables is full and not is_empty(value):
                    record[field.name] = value
        return record

    def _check_from_legacy(
        self,
        fields: list[Field],
        sample: Mapping[str, Any],
        known: frozenset[str] | None,
        given: Variables,
    ) -> None:
        for field in fields:
            assert field.target is not None
            for data in ({}, sample):
                try:
                    scope = {"record": LegacyRecord(data, known), "vars": given}
                    scim_value(field.target, field.template.render(scope))
                except _Unresolved:
                    break
                except Exception as exc:
                    names = ("record", "vars")
                    self.error(field.line, field.label, _describe(exc, self.env, names))
                    break


def _holds_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list):
        return any(_holds_template(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_template(v) for v in value.values())
    return False


def _resolve_references(value: Any) -> Any:
    """``value`` with every ``${env:NAME}`` / ``${file:PATH}`` in its strings resolved."""
    if isinstance(value, str):
        return resolve_secret(value)
    if isinstance(value, list):
        return [_resolve_references(v) for v in value]
    if isinstance(value, dict):
        return {k: _resolve_references(v) for k, v in value.items()}
    return value


def _is_carried(path: str, carried: set[str]) -> bool:
    parent = path.rpartition(".")[0] if "." in path.rpartition(":")[2] else ""
    return (
        path in carried
        or (bool(parent) and parent in carried)
        or any(c.startswith(path + ".") or c.startswith(path + ":") for c in carried)
    )


def _line_number(error: str, file: Path) -> int:
    head = error.removeprefix(str(file)).removeprefix(":").partition(":")[0]
    return int(head) if head.isdigit() else 0


def load_mapping(path: Path) -> TemplateMapping:
    """Load and check the mapping directory ``path``; :class:`MappingError` lists every problem."""
    if not path.is_dir():
        raise MappingError([f"{path}: not a directory of mapping files"])
    env = MappingEnvironment()
    errors: list[str] = []
    types: dict[str, TypeMapping] = {}
    for file in sorted(path.iterdir()):
        # Other files may live alongside (an adapter's settings, notes): not ours.
        type_name = FILES.get(file.stem.lower()) if file.suffix in (".yaml", ".yml") else None
        if type_name is None:
            continue
        yaml_file = YamlFile(file)
        try:
            loaded = _Loader(yaml_file, type_name, env).load()
        finally:
            yaml_file.close()
        errors.extend(sorted(yaml_file.errors, key=lambda e: _line_number(e, file)))
        if loaded is not None:
            if type_name in types:
                errors.append(f"{file}: {type_name} is mapped by another file too")
            types[type_name] = loaded
    if not types and not errors:
        errors.append(f"{path}: no user.yaml or group.yaml")
    if errors:
        raise MappingError(errors)
    return TemplateMapping(types, path)


def resolve_mapping_dir(value: str, config_dir: Path | None = None) -> Path:
    """The directory a config's ``mapping:`` names.

    A relative path is looked up next to the config file, then in the
    repository's ``mappings/`` folder (``acme-hr``), then from the repository
    itself (``mappings/acme-hr``); raises :class:`MappingError` when none
    holds it.
    """
    given = Path(value).expanduser()
    if given.is_absolute():
        return given
    candidates = [config_dir / given] if config_dir is not None else []
    candidates += [MAPPINGS_DIR / given, MAPPINGS_DIR.parent / given]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise MappingError([f"no mapping directory {value!r} (looked for {tried})"])
