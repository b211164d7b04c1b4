"""The REST adapter's settings: validated with errors that name the key, and all documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel
from rest_support import API_KEY, MAPPING, make_settings, user_section

from adapters.rest import RestAdapter, config
from gateway.config import ConfigError
from gateway.registry import available_adapters, build_adapter

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "rest-adapter.md").read_text("utf-8")


def _models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(config).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_settings_key_is_in_the_guide(model: type[BaseModel]) -> None:
    missing = [name for name in model.model_fields if not re.search(rf"\b{name}:", GUIDE)]
    assert missing == [], f"{model.__name__} keys missing from docs/rest-adapter.md: {missing}"


def test_the_adapter_is_installed_as_rest() -> None:
    assert available_adapters()["rest"] is RestAdapter


def _errors(settings: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        build_adapter("crm", "rest", settings, source="gateway.yaml")
    return str(caught.value)


def _valid() -> dict[str, Any]:
    return {"base_url": "http://127.0.0.1:1/api", "users": user_section()}


def test_an_unknown_key_is_named() -> None:
    errors = _errors({**_valid(), "paging": "offset"})
    assert "gateway.yaml: apps.crm.settings.paging: Extra inputs are not permitted" in errors


def test_a_path_with_an_unknown_placeholder_is_refused() -> None:
    settings = _valid()
    settings["users"]["get"] = {"path": "/items/{login}"}
    assert "apps.crm.settings.users.get.path" in _errors(settings)


def test_a_path_holding_a_query_is_refused() -> None:
    settings = _valid()
    settings["users"]["list"] = {"path": "/items?all=1", "paging": {"style": "none"}}
    assert "put query parameters under 'query'" in _errors(settings)


def test_membership_needs_add_and_remove_or_write() -> None:
    settings = _valid()
    settings["groups"] = {
        **user_section(),
        "members": {"read": {"field": "ids"}, "add": {"path": "/g/{id}/m/{member}"}},
    }
    assert "give both 'add' and 'remove', or 'write'" in _errors(settings)


def test_a_member_call_must_name_the_member() -> None:
    settings = _valid()
    settings["groups"] = {
        **user_section(),
        "members": {
            "read": {"field": "ids"},
            "add": {"method": "POST", "path": "/g/{id}/m"},
            "remove": {"method": "DELETE", "path": "/g/{id}/m/{member}"},
        },
    }
    assert "add must use {member} or {members}" in _errors(settings)


@pytest.mark.parametrize(
    "base_url", ["ftp://host/api", "http://user:pw@host/api", "http://host/api?key=1", "host"]
)
def test_base_url_must_be_a_plain_http_url(base_url: str) -> None:
    assert "apps.crm.settings.base_url" in _errors({**_valid(), "base_url": base_url})


def test_a_bad_duplicate_pattern_is_refused() -> None:
    errors = _errors({**_valid(), "duplicate": {"body_pattern": "(unclosed"}})
    assert "apps.crm.settings.duplicate.body_pattern" in errors


def test_an_unset_environment_reference_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_FOR_REST", raising=False)
    settings = {**_valid(), "auth": {"type": "bearer", "token": "${env:NO_SUCH_VAR_FOR_REST}"}}
    errors = _errors(settings)
    assert "apps.crm.settings.auth.bearer.token" in errors
    assert "NO_SUCH_VAR_FOR_REST is not set" in errors


def test_secrets_do_not_show_in_the_settings_repr() -> None:
    settings = make_settings("http://127.0.0.1:1/api")
    assert API_KEY not in repr(settings)
    assert API_KEY not in str(settings.model_dump())


def test_filter_parameters_may_be_short_or_long() -> None:
    users = user_section(filters={"login": {"eq": "login", "sw": {"param": "q", "exact": True}}})
    settings = make_settings("http://127.0.0.1:1/api", users=users)
    filters = settings.users.filters["login"]
    assert (filters["eq"].param, filters["eq"].exact) == ("login", False)
    assert (filters["sw"].param, filters["sw"].exact) == ("q", True)


def test_filter_capabilities_follow_the_mapping() -> None:
    users = user_section(filters={"login": {"eq": "login", "co": "q"}, "nickname": {"eq": "n"}})
    adapter = RestAdapter(make_settings("http://127.0.0.1:1/api", users=users), mapping=MAPPING)
    declared = adapter.capabilities.filter_attributes["User"]
    assert declared == {"id": frozenset({"eq"}), "username": frozenset({"eq", "co"})}
    assert adapter.capabilities.groups is False
    assert adapter.capabilities.resource_types == frozenset({"User"})


def test_the_acme_settings_file_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_HR_URL", "http://127.0.0.1:8081/api/v1")
    monkeypatch.setenv("ACME_HR_API_KEY", API_KEY)
    raw = yaml.safe_load((ROOT / "mappings" / "acme-hr" / "rest.yaml").read_text("utf-8"))
    adapter = build_adapter("acme", "rest", raw)
    assert isinstance(adapter, RestAdapter)
