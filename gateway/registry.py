"""Adapter discovery through the ``scim_gateway.adapters`` entry-point group."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from gateway.config import ConfigError, describe_errors
from gateway.mapping import Mapping
from gateway.sdk import Adapter

GROUP = "scim_gateway.adapters"


def available_adapters() -> dict[str, type[Adapter]]:
    found: dict[str, type[Adapter]] = {}
    for ep in entry_points(group=GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Adapter)):
            raise ConfigError(f"entry point {ep.name!r} in {GROUP} is not a gateway.sdk.Adapter")
        found[ep.name] = cls
    return found


def build_adapter(
    app: str,
    name: str,
    settings: dict[str, Any],
    *,
    source: str = "<config>",
    mapping: Mapping | None = None,
    unique_group_names: bool = True,
) -> Adapter:
    """Instantiate the adapter ``name`` for ``app``; settings errors name the key."""
    adapter = _instantiate(app, name, settings, source, mapping)
    adapter.unique_group_names = unique_group_names
    return adapter


def _instantiate(
    app: str, name: str, settings: dict[str, Any], source: str, mapping: Mapping | None
) -> Adapter:
    adapters = available_adapters()
    if name not in adapters:
        known = ", ".join(sorted(adapters)) or "none installed"
        raise ConfigError(f"{source}: apps.{app}.adapter: unknown adapter {name!r} ({known})")
    cls = adapters[name]
    model = cls.settings_model
    if model is None:
        if settings:
            raise ConfigError(f"{source}: apps.{app}.settings: adapter {name!r} takes no settings")
        return cls(None, app=app, mapping=mapping)
    try:
        parsed = model.model_validate(settings)
    except ValidationError as exc:
        raise ConfigError(describe_errors(exc, model, f"{source}: apps.{app}.settings.")) from None
    return cls(parsed, app=app, mapping=mapping)
