"""RFC 7643 schemas as precomputed lookup tables.

Everything that needs to know what an attribute is (filters, PATCH, body
normalisation, projection, sorting) asks a :class:`ResourceType`. Lookups are
case-insensitive (RFC 7643 2.1) and return the canonical spelling.

A resource is held as plain JSON data: core and common attributes at the top
level under their canonical names, extension attributes in an object under
the extension's schema URN.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_URN = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST_URN = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_URN = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
SCHEMA_URN = "urn:ietf:params:scim:schemas:core:2.0:Schema"
RESOURCE_TYPE_URN = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SPC_URN = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: str = "string"
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"
    returned: str = "default"
    uniqueness: str = "none"
    description: str = ""
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    sub_attributes: Mapping[str, Attribute] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attribute:
        subs = [cls.from_json(s) for s in data.get("subAttributes", ())]
        return cls(
            name=data["name"],
            type=data.get("type", "string"),
            multi_valued=data.get("multiValued", False),
            required=data.get("required", False),
            case_exact=data.get("caseExact", False),
            mutability=data.get("mutability", "readWrite"),
            returned=data.get("returned", "default"),
            uniqueness=data.get("uniqueness", "none"),
            description=data.get("description", ""),
            canonical_values=tuple(data.get("canonicalValues", ())),
            reference_types=tuple(data.get("referenceTypes", ())),
            sub_attributes={s.name.lower(): s for s in subs},
        )

    def sub(self, name: str) -> Attribute | None:
        return self.sub_attributes.get(name.lower())

    @property
    def read_only(self) -> bool:
        return self.mutability == "readOnly"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self.description,
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.canonical_values:
            out["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            out["referenceTypes"] = list(self.reference_types)
        if self.sub_attributes:
            out["subAttributes"] = [s.to_json() for s in self.sub_attributes.values()]
        return out


@dataclass(frozen=True, slots=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: Mapping[str, Attribute]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Schema:
        attrs = [Attribute.from_json(a) for a in data["attributes"]]
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            description=data.get("description", ""),
            attributes={a.name.lower(): a for a in attrs},
        )

    def restricted(self, paths: Collection[str]) -> Schema:
        """Keep only the attributes (and sub-attributes) named in ``paths``.

        ``paths`` holds lower-case names such as ``"name"`` (all of it) or
        ``"name.givenname"`` (that sub-attribute only).
        """
        kept: dict[str, Attribute] = {}
        for key, attr in self.attributes.items():
            if key in paths:
                kept[key] = attr
                continue
            subs = {k: s for k, s in attr.sub_attributes.items() if f"{key}.{k}" in paths}
            if subs:
                kept[key] = replace(attr, sub_attributes=subs)
        return replace(self, attributes=kept)

    def narrowing(self, values: Mapping[str, Collection[str]]) -> Schema:
        """Sub-attributes named in ``values`` (``"emails.type"``) get those canonicalValues."""
        if not values:
            return self
        changed: dict[str, Attribute] = {}
        for key, attr in self.attributes.items():
            subs = {
                k: replace(s, canonical_values=tuple(values[f"{key}.{k}"]))
                if f"{key}.{k}" in values
                else s
                for k, s in attr.sub_attributes.items()
            }
            changed[key] = replace(attr, sub_attributes=subs)
        return replace(self, attributes=changed)

    def requiring(self, paths: Collection[str]) -> Schema:
        """The attributes (and sub-attributes) named in ``paths`` marked required.

        ``paths`` holds lower-case names as :meth:`restricted` takes them.
        """
        if not paths:
            return self
        marked: dict[str, Attribute] = {}
        for key, attr in self.attributes.items():
            subs = {
                k: replace(s, required=True) if f"{key}.{k}" in paths else s
                for k, s in attr.sub_attributes.items()
            }
            marked[key] = replace(attr, required=attr.required or key in paths, sub_attributes=subs)
        return replace(self, attributes=marked)

    def to_json(self, location: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": [SCHEMA_URN],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.to_json() for a in self.attributes.values()],
            "meta": {"resourceType": "Schema"},
        }
        if location:
            out["meta"]["location"] = location
        return out


def _meta_attribute() -> Attribute:
    def ro(name: str, type_: str = "string", case_exact: bool = False) -> Attribute:
        return Attribute(name, type_, case_exact=case_exact, mutability="readOnly")

    subs = [
        ro("resourceType", case_exact=True),
        ro("created", "dateTime"),
        ro("lastModified", "dateTime"),
        ro("location", "reference", case_exact=True),
        ro("version", case_exact=True),
    ]
    return Attribute(
        "meta", "complex", mutability="readOnly", sub_attributes={s.name.lower(): s for s in subs}
    )


COMMON_ATTRIBUTES: Mapping[str, Attribute] = {
    "id": Attribute(
        "id", case_exact=True, mutability="readOnly", returned="always", uniqueness="server"
    ),
    "externalid": Attribute("externalId", case_exact=True),
    "meta": _meta_attribute(),
}


@dataclass(frozen=True, slots=True)
class Resolved:
    """Where an attribute path lands in a resource of a given type."""

    container: str | None  # the extension URN whose object holds it; None for core
    attribute: Attribute
    sub: Attribute | None = None

    @property
    def target(self) -> Attribute:
        return self.sub or self.attribute

    @property
    def dotted(self) -> str:
        """Canonical, fully qualified path, e.g. ``name.givenName``."""
        head = f"{self.container}:{self.attribute.name}" if self.container else self.attribute.name
        return f"{head}.{self.sub.name}" if self.sub else head


@dataclass(frozen=True, slots=True)
class ResourceType:
    name: str
    endpoint: str
    description: str
    schema: Schema
    extensions: tuple[tuple[Schema, bool], ...] = ()
    #: Body keys already resolved (gateway.scim.resource.lookup_key): the type never
    #: changes once built, so neither do the answers. Not part of its identity.
    resolved_keys: dict[str, Resolved | Schema | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def schema_urns(self) -> tuple[str, ...]:
        return (self.schema.id, *(s.id for s, _ in self.extensions))

    def extension(self, urn: str) -> Schema | None:
        low = urn.lower()
        for ext, _required in self.extensions:
            if ext.id.lower() == low:
                return ext
        return None

    def resolve(self, attr: str, sub: str | None = None, uri: str | None = None) -> Resolved | None:
        """Resolve ``[uri:]attr[.sub]``; None when this type has no such attribute.

        A URN that names an extension followed by nothing (the parser reads
        ``urn:...:2.0:User`` as URI ``urn:...:2.0`` and attribute ``User``) is
        not an attribute; :meth:`lookup` handles that form.
        """
        container: str | None = None
        attribute: Attribute | None
        if uri is None or uri.lower() == self.schema.id.lower():
            attribute = self.schema.attributes.get(attr.lower())
            if attribute is None and uri is None:
                attribute = COMMON_ATTRIBUTES.get(attr.lower())
        else:
            ext = self.extension(uri)
            if ext is None:
                return None
            container = ext.id
            attribute = ext.attributes.get(attr.lower())
        if attribute is None:
            return None
        if sub is None:
            return Resolved(container, attribute)
        sub_attr = attribute.sub(sub)
        return None if sub_attr is None else Resolved(container, attribute, sub_attr)

    def lookup(self, text: str) -> Resolved | Schema | None:
        """Resolve a body key or simple path: plain, dotted, URN-qualified or a bare extension URN.

        The ``.`` inside a URN's version (``2.0``) never splits the path
        (IdP rule 4): the URN is everything up to the last colon.
        """
        if text.lower().startswith("urn:"):
            ext = self.extension(text)
            if ext is not None:
                return ext
            uri, _, rest = text.rpartition(":")
            attr, _, sub = rest.partition(".")
            return self.resolve(attr, sub or None, uri)
        attr, _, sub = text.partition(".")
        return self.resolve(attr, sub or None)

    def attributes(self) -> Iterable[tuple[str | None, Attribute]]:
        """Every top-level attribute with its container, common ones included."""
        for a in COMMON_ATTRIBUTES.values():
            yield None, a
        for a in self.schema.attributes.values():
            yield None, a
        for ext, _ in self.extensions:
            for a in ext.attributes.values():
                yield ext.id, a

    def to_json(self, location: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemas": [RESOURCE_TYPE_URN],
            "id": self.name,
            "name": self.name,
            "endpoint": self.endpoint,
            "description": self.description,
            "schema": self.schema.id,
            "schemaExtensions": [
                {"schema": s.id, "required": required} for s, required in self.extensions
            ],
            "meta": {"resourceType": "ResourceType"},
        }
        if location:
            out["meta"]["location"] = location
        return out


def _load(name: str) -> Schema:
    text = resources.files("gateway.scim").joinpath("data", f"{name}.json").read_text("utf-8")
    return Schema.from_json(json.loads(text))


USER_SCHEMA = _load("user")
ENTERPRISE_SCHEMA = _load("enterprise_user")
GROUP_SCHEMA = _load("group")


def build_resource_types(
    supported: Mapping[str, Collection[str] | None] | None = None,
    required: Mapping[str, Collection[str]] | None = None,
    canonical: Mapping[str, Mapping[str, Collection[str]]] | None = None,
) -> dict[str, ResourceType]:
    """The User and Group resource types, each restricted to what an adapter round-trips.

    ``supported`` maps a resource type name to the lower-case attribute paths
    its adapter keeps (see :class:`gateway.sdk.Capabilities`); a missing or
    ``None`` entry keeps the whole RFC schema. A type mapped to an empty
    collection is not offered at all. ``required`` maps a type name to the
    lower-case paths its legacy app requires besides RFC 7643's (a mapping's
    ``required:``); they are marked required. ``canonical`` maps a type name to
    lower-case sub-attribute paths and the only values its adapter keeps of them
    (``Capabilities.canonical_values``), listed as their canonicalValues.
    """
    supported = supported or {}
    required = required or {}
    canonical = canonical or {}

    def values_within(type_name: str, prefix: str) -> dict[str, Collection[str]]:
        found = canonical.get(type_name, {})
        return {p[len(prefix) :]: v for p, v in found.items() if p.startswith(prefix)}

    def within(paths: Collection[str], prefix: str) -> Collection[str]:
        return {p[len(prefix) :] for p in paths if p.startswith(prefix)} if prefix else paths

    def cut(schema: Schema, type_name: str, prefix: str = "") -> Schema:
        paths = supported.get(type_name)
        kept = schema if paths is None else schema.restricted(within(paths, prefix))
        kept = kept.narrowing(values_within(type_name, prefix))
        return kept.requiring(within(required.get(type_name, ()), prefix))

    types: dict[str, ResourceType] = {}

    def offered(type_name: str) -> bool:
        paths = supported.get(type_name)
        return paths is None or len(paths) > 0

    if offered("User"):
        enterprise = cut(ENTERPRISE_SCHEMA, "User", ENTERPRISE_URN.lower() + ":")
        types["User"] = ResourceType(
            name="User",
            endpoint="/Users",
            description="User Account",
            schema=cut(USER_SCHEMA, "User"),
            extensions=((enterprise, False),) if enterprise.attributes else (),
        )
    if offered("Group"):
        types["Group"] = ResourceType(
            name="Group",
            endpoint="/Groups",
            description="Group",
            schema=cut(GROUP_SCHEMA, "Group"),
        )
    return types
