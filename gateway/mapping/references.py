"""What a template names, read from its syntax tree: SCIM attributes and record fields.

The start-up check uses it to find to_legacy templates that read attributes
requests never carry, and ``fields`` entries whose from_legacy template does
not read the legacy field they claim.
"""

from __future__ import annotations

from jinja2 import nodes

from gateway.mapping.context import attribute_variables
from gateway.scim.schema import ENTERPRISE_URN, Attribute, ResourceType

__all__ = ["Reference", "record_fields", "references", "scim_paths"]

#: A variable and the constant keys after it: ``name.givenName`` is ("name", ("givenName",));
#: a key that is not a constant string is None.
Reference = tuple[str, tuple[str | None, ...]]


def references(tree: nodes.Template) -> list[Reference]:
    """Every variable a template reads, with the chain of attribute/item keys after it."""
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx != "load"}
    found: list[Reference] = []

    def visit(node: nodes.Node) -> None:
        keys: list[str | None] = []
        current = node
        while isinstance(current, nodes.Getattr | nodes.Getitem):
            if isinstance(current, nodes.Getattr):
                keys.append(current.attr)
            else:
                arg = current.arg
                keys.append(arg.value if isinstance(arg, nodes.Const) else None)
                visit(arg)
            current = current.node
        if isinstance(current, nodes.Name):
            if current.ctx == "load" and current.name not in assigned:
                found.append(
                    (current.name, tuple(k if isinstance(k, str) else None for k in keys[::-1]))
                )
            return
        for child in current.iter_child_nodes():
            visit(child)

    visit(tree)
    return found


def record_fields(tree: nodes.Template) -> set[str]:
    """The legacy fields a from_legacy template reads as ``record.x`` or ``record["x"]``;
    a nested one (``record.contact.email``) also as its dotted path, ``contact.email``."""
    found: set[str] = set()
    for name, keys in references(tree):
        if name != "record":
            continue
        parts: list[str] = []
        for key in keys:
            if key is None:
                break
            parts.append(key)
            found.add(".".join(parts))
    return found


def _attribute_path(attr: Attribute, keys: tuple[str | None, ...], prefix: str = "") -> str:
    path = f"{prefix}{attr.name}".lower()
    if attr.type == "complex" and not attr.multi_valued and keys and keys[0]:
        sub = attr.sub(keys[0])
        if sub is not None:
            path = f"{path}.{sub.name.lower()}"
    return path


def scim_paths(rtype: ResourceType, refs: list[Reference]) -> set[str]:
    """The lower-case SCIM paths behind to_legacy references (unknown names left out)."""
    variables = attribute_variables(rtype)
    paths: set[str] = set()
    for name, keys in refs:
        if name in variables:
            paths.add(_attribute_path(variables[name], keys))
            continue
        if name == "enterprise":
            urn, rest = ENTERPRISE_URN, keys
        elif name == "extensions" and keys and keys[0]:
            urn, rest = keys[0], keys[1:]
        else:
            continue
        ext = rtype.extension(urn)
        if ext is None:
            continue
        if not rest or rest[0] is None:
            paths.add(ext.id.lower())  # the whole extension
        elif (attr := ext.attributes.get(rest[0].lower())) is not None:
            paths.add(_attribute_path(attr, rest[1:], f"{ext.id}:"))
    return paths
