"""The SQL adapter's settings: errors that name the key, a secret DSN, every key documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from adapters.sql import SqlAdapter, config
from gateway.config import ConfigError
from gateway.mapping.engine import MAPPINGS_DIR, load_mapping
from gateway.registry import available_adapters, build_adapter

ROOT = Path(__file__).parents[2]
GUIDE = (ROOT / "docs" / "sql-adapter.md").read_text("utf-8")
PAYROLL = MAPPINGS_DIR / "payroll"


def _models() -> list[type[BaseModel]]:
    return [
        value
        for value in vars(config).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_settings_key_is_in_the_guide(model: type[BaseModel]) -> None:
    keys = [f.alias or name for name, f in model.model_fields.items()]
    missing = [key for key in keys if not re.search(rf"`{key}:`", GUIDE)]
    assert missing == [], f"{model.__name__} keys missing from docs/sql-adapter.md: {missing}"


def test_the_adapter_is_installed_as_sql() -> None:
    assert available_adapters()["sql"] is SqlAdapter


def _settings(name: str = "sql.yaml") -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load((PAYROLL / name).read_text("utf-8"))
    return raw


def _errors(settings: dict[str, Any], mapping: Any = None) -> str:
    with pytest.raises(ConfigError) as caught:
        build_adapter("payroll", "sql", settings, source="gateway.yaml", mapping=mapping)
    return str(caught.value)


@pytest.fixture(autouse=True)
def _dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYROLL_DSN", "postgresql://gw:pa55w0rd@db.internal:5432/payroll")


def test_the_dsn_is_a_secret_that_never_prints() -> None:
    settings = config.SqlSettings.model_validate(_settings())
    assert "pa55w0rd" not in repr(settings) and "pa55w0rd" not in str(settings)
    assert settings.dsn.get_secret_value().endswith("@db.internal:5432/payroll")


def test_a_dsn_of_another_database_is_refused() -> None:
    errors = _errors({**_settings(), "dsn": "mssql://x@y/z"})
    assert "apps.payroll.settings.dsn: must be a postgresql://, mysql:// or mariadb:// URL" in (
        errors
    )


def test_statement_mode_on_mysql_is_refused_naming_the_key() -> None:
    settings = {**_settings("sql-statements.yaml"), "dsn": "mysql://gw@db.internal/payroll"}
    errors = _errors(settings, mapping=load_mapping(PAYROLL))
    assert "apps.payroll.settings.users.mode: statement mode needs PostgreSQL" in errors


def test_an_unresolvable_dsn_reference_names_the_key() -> None:
    assert "apps.payroll.settings.dsn" in _errors({**_settings(), "dsn": "${env:NO_SUCH_VAR_X}"})


def test_an_unknown_key_is_named() -> None:
    settings = _settings()
    settings["users"]["colums"] = []
    assert "apps.payroll.settings.users.table.colums: Extra inputs are not permitted" in _errors(
        settings
    )


def test_a_table_name_that_is_no_plain_name_is_refused() -> None:
    settings = _settings()
    settings["users"]["table"] = 'emp"; DROP TABLE x; --'
    assert "apps.payroll.settings.users.table.table: must be a plain SQL name" in (
        _errors(settings)
    )


def test_the_adapter_needs_a_mapping() -> None:
    assert "apps.payroll.mapping: the sql adapter needs a mapping" in _errors(_settings())


def test_a_positional_parameter_in_a_statement_is_refused() -> None:
    from gateway.mapping.engine import load_mapping

    settings = _settings("sql-statements.yaml")
    settings["users"]["get"] = "SELECT * FROM emp_master WHERE emp_no = $1"
    errors = _errors(settings, load_mapping(PAYROLL))
    assert "apps.payroll.settings.users.get: use named parameters (:name), not $1" in errors


def test_a_search_statement_without_its_slots_is_refused() -> None:
    from gateway.mapping.engine import load_mapping

    settings = _settings("sql-statements.yaml")
    settings["users"]["search"] = "SELECT * FROM emp_master LIMIT :limit OFFSET :offset"
    errors = _errors(settings, load_mapping(PAYROLL))
    assert "users.search: the statement must hold" in errors
