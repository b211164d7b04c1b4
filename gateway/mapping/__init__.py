"""Mappings: how an app's legacy records and SCIM resources translate, both ways.

A mapping works per resource type ("User", "Group") on plain data:

* :meth:`Mapping.to_legacy` turns the writable part of a canonical SCIM
  resource (no ``id``, ``meta``, ``schemas``, ``members`` or ``groups``) into
  the legacy record's fields;
* :meth:`Mapping.from_legacy` turns a legacy record back into SCIM attributes;
* :meth:`Mapping.legacy_field` names the legacy field a SCIM attribute lives
  in, where it is a plain copy, so adapters can push filters and sorts down;
* :meth:`Mapping.attributes` lists the SCIM attributes the mapping carries,
  so an app's ``/Schemas`` shows only those.
* :meth:`Mapping.required` lists the SCIM attributes the legacy app cannot
  do without, so an app's ``/Schemas`` marks them required.

Group membership never goes through a mapping: SCIM ids are the legacy ids,
and members travel as :class:`gateway.sdk.Ref` lists and add/remove deltas.

:class:`IdentityMapping` serves adapters whose records are SCIM-shaped;
:class:`gateway.mapping.engine.TemplateMapping` maps real legacy records with
sandboxed Jinja templates from YAML files (``load_mapping``; docs/mappings.md).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from typing import Any, Protocol


class Mapping(Protocol):
    def to_legacy(self, resource_type: str, resource: MappingABC[str, Any]) -> dict[str, Any]: ...

    def from_legacy(self, resource_type: str, record: MappingABC[str, Any]) -> dict[str, Any]: ...

    def legacy_field(self, resource_type: str, path: str) -> str | None:
        """The legacy field holding the SCIM attribute ``path`` (canonical, lower-case, dotted)."""
        ...

    def attributes(self, resource_type: str) -> frozenset[str] | None:
        """Lower-case SCIM paths this mapping carries; None for all of them."""
        ...

    def required(self, resource_type: str) -> frozenset[str]:
        """Lower-case SCIM paths the legacy app requires, beyond what RFC 7643 requires."""
        ...


class IdentityMapping:
    """For adapters whose records are SCIM-shaped already (the memory adapter)."""

    def to_legacy(self, resource_type: str, resource: MappingABC[str, Any]) -> dict[str, Any]:
        return dict(resource)

    def from_legacy(self, resource_type: str, record: MappingABC[str, Any]) -> dict[str, Any]:
        # A record's data is the gateway's own (gateway.sdk.Record): the gateway builds the
        # resource from it without a copy first, as it did from the shallow one this was.
        return record if type(record) is dict else dict(record)

    def legacy_field(self, resource_type: str, path: str) -> str | None:
        return path

    def attributes(self, resource_type: str) -> frozenset[str] | None:
        return None

    def required(self, resource_type: str) -> frozenset[str]:
        return frozenset()


__all__ = ["IdentityMapping", "Mapping"]
