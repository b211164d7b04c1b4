"""The LDAP adapter's settings: every key documented, the shipped pack valid, the entry point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from adapters.ldap import LdapAdapter, config
from gateway.mapping.engine import MAPPINGS_DIR
from gateway.registry import available_adapters

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "ldap-adapter.md").read_text("utf-8")


def _models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(config).values()
        if isinstance(value, type)
        and issubclass(value, BaseModel)
        and value.__module__ == config.__name__
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_settings_key_is_in_the_guide(model: type[BaseModel]) -> None:
    keys = [f.alias or name for name, f in model.model_fields.items()]
    missing = [key for key in keys if not re.search(rf"`{key}:`", GUIDE)]
    assert missing == [], f"{model.__name__} keys missing from docs/ldap-adapter.md: {missing}"


def test_the_adapter_is_installed_as_ldap() -> None:
    assert available_adapters()["ldap"] is LdapAdapter


def test_the_shipped_settings_validate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    raw = yaml.safe_load((MAPPINGS_DIR / "ldap-inetorgperson" / "ldap.yaml").read_text("utf-8"))
    secret = tmp_path / "ldap-password"
    secret.write_text("s3cret\n")
    raw["password"] = f"${{file:{secret}}}"
    monkeypatch.setenv("LDAP_URL", "ldaps://ldap.example.org")
    monkeypatch.setenv("LDAP_BIND_DN", "cn=gw,dc=example,dc=org")
    raw["start_tls"] = False
    settings = config.LdapSettings.model_validate(raw)
    assert settings.password.get_secret_value() == "s3cret"
    assert settings.users.rdn_attribute == "uid"


@pytest.mark.parametrize(
    ("dn", "why"),
    [
        ("ou=people,dc=example,dc=org", "attribute={field}"),
        ("uid={uid}", "parent"),
        ("uid={cn},ou=people,dc=example,dc=org", "naming attribute"),
        ("uid={uid},ou=people,dc={dc}", "one {field}"),
    ],
)
def test_a_dn_template_must_name_the_entry_by_one_field(dn: str, why: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(why)):
        config.UserEntries(base_dn="dc=example,dc=org", dn=dn, object_classes=["x"])
