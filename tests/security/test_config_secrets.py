"""Secrets in the config never print: reprs, dumps, ConfigError messages, check and render.

Every secret below is written both literally and as a ``${env:...}`` reference, in
each place a config holds one: inbound tokens, a REST app's API key, bearer token,
Basic and OAuth credentials, extra headers and OAuth form fields, a SQL DSN.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_support import closed_port, user_section

from adapters.rest import RestSettings
from adapters.sql import SqlSettings
from gateway.app import build_runtimes
from gateway.cli import main
from gateway.config import ConfigError, load_settings, parse_settings
from gateway.mapping.engine import MAPPINGS_DIR
from gateway.masking import MASK, masked

LITERAL = {
    "inbound": "inbound-TOKEN-literal-71c3",
    "api_key": "api-KEY-literal-0d9e",
    "client_secret": "oauth-CLIENT-secret-5a1b",
    "header": "header-SECRET-value-88f0",
    "password": "db-PASSW0RD-literal-3c2d",
}
FROM_ENV = {
    "S_INBOUND": "inbound-TOKEN-from-env-19ab",
    "S_BEARER": "bearer-TOKEN-from-env-4e4e",
    "S_BASIC": "basic-PASSWORD-from-env-7777",
    "S_ASSERTION": "oauth-ASSERTION-from-env-6b6b",
    "S_DSN": "postgresql://payroll:db-PASSWORD-from-env-2f2f@127.0.0.1:5432/payroll",
}
#: The payroll sample's SQL settings (their dsn is replaced below).
PAYROLL_SQL = yaml.safe_load((MAPPINGS_DIR / "payroll" / "sql.yaml").read_text("utf-8"))
SECRETS = [*LITERAL.values(), *FROM_ENV.values(), "db-PASSWORD-from-env-2f2f"]


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FROM_ENV.items():
        monkeypatch.setenv(name, value)


def rest(auth: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "base_url": f"http://127.0.0.1:{closed_port()}",
        "auth": auth,
        "users": user_section(),
        **extra,
    }


def raw_config() -> dict[str, Any]:
    tokens = [
        {"name": "a", "secret": LITERAL["inbound"]},
        {"name": "b", "secret": "${env:S_INBOUND}"},
    ]
    oauth = {
        "type": "oauth2",
        "token_url": "http://127.0.0.1:9/token",
        "client_id": "gateway",
        "client_secret": LITERAL["client_secret"],
        "params": {"client_assertion": "${env:S_ASSERTION}", "audience": "api"},
    }
    apps = {
        "key": rest(
            {"type": "api_key", "key": LITERAL["api_key"]},
            headers={"X-Tenant-Key": LITERAL["header"]},
        ),
        "bearer": rest({"type": "bearer", "token": "${env:S_BEARER}"}),
        "basic": rest({"type": "basic", "username": "svc", "password": "${env:S_BASIC}"}),
        "oauth": rest(oauth),
        "sql_literal": {
            **PAYROLL_SQL,
            "dsn": f"postgresql://payroll:{LITERAL['password']}@127.0.0.1:5432/p",
        },
        "sql_env": {**PAYROLL_SQL, "dsn": "${env:S_DSN}"},
    }
    return {
        "apps": {
            name: {
                "adapter": "sql" if name.startswith("sql") else "rest",
                "mapping": "payroll" if name.startswith("sql") else None,
                "settings": settings,
                "auth": {"tokens": tokens},
            }
            for name, settings in apps.items()
        }
    }


def assert_no_secret(text: str, where: str) -> None:
    found = [secret for secret in SECRETS if secret in text]
    assert found == [], f"{where} shows {found}"


def test_settings_print_and_dump_without_secrets() -> None:
    settings = parse_settings(raw_config())
    for where, text in [
        ("repr", repr(settings)),
        ("str", str(settings)),
        ("model_dump", str(settings.model_dump())),
        ("model_dump_json", settings.model_dump_json()),
        ("app repr", repr(settings.apps["key"])),
        ("app dump", json.dumps(settings.apps["oauth"].model_dump(mode="json"))),
    ]:
        assert_no_secret(text, where)
    # The values themselves are intact for the code that uses them.
    assert settings.apps["key"].settings["auth"]["key"] == LITERAL["api_key"]
    assert settings.apps["key"].auth.tokens[0].secret is not None
    assert settings.apps["key"].auth.tokens[0].secret.get_secret_value() == LITERAL["inbound"]


def test_adapter_settings_print_and_dump_without_secrets() -> None:
    raw = raw_config()["apps"]
    models: list[Any] = [
        RestSettings.model_validate(raw[n]["settings"]) for n in ("key", "bearer", "basic", "oauth")
    ]
    models += [SqlSettings.model_validate(raw[n]["settings"]) for n in ("sql_literal", "sql_env")]
    for model in models:
        for where, text in [
            ("repr", repr(model)),
            ("str", str(model)),
            ("dump", str(model.model_dump())),
            ("json", model.model_dump_json()),
        ]:
            assert_no_secret(text, f"{type(model).__name__} {where}")
    oauth = models[3]
    assert oauth.auth.params["client_assertion"] == FROM_ENV["S_ASSERTION"]  # resolved, usable
    assert models[0].headers["X-Tenant-Key"] == LITERAL["header"]


def test_masking_keeps_references_names_and_a_urls_user() -> None:
    value = {
        "dsn": "${env:PAYROLL_DSN}",
        "url": "https://svc:hunter2@example.com/x",
        "token_url": "https://example.com/token",
        "client_id": "gateway",
        "nested": [{"api_key": 12345, "name": "visible"}],
    }
    assert masked(value) == {
        "dsn": "${env:PAYROLL_DSN}",
        "url": f"https://svc:{MASK}@example.com/x",
        "token_url": "https://example.com/token",
        "client_id": "gateway",
        "nested": [{"api_key": MASK, "name": "visible"}],
    }


@pytest.mark.parametrize(
    "mutate",
    [
        # A YAML error on the line of a secret: PyYAML quotes that line in its message.
        lambda text: text.replace(
            f"secret: {LITERAL['inbound']}", f'secret: "{LITERAL["inbound"]}'
        ),
        lambda text: text.replace(f"key: {LITERAL['api_key']}", f"key: [{LITERAL['api_key']}"),
        # Values of the wrong type or shape next to secrets, unknown keys holding them.
        lambda text: text.replace(
            f"secret: {LITERAL['inbound']}", f"secret: [{LITERAL['inbound']}]"
        ),
        lambda text: text.replace(f"key: {LITERAL['api_key']}", f"kee: {LITERAL['api_key']}"),
        lambda text: text.replace("dsn: postgresql://", "dns: postgresql://"),
        lambda text: text.replace("postgresql://payroll", "oracle://payroll"),
        lambda text: text.replace("type: basic", "type: basik"),
        lambda text: text.replace("${env:S_BEARER}", "${env:S_UNSET_VARIABLE}"),
    ],
)
def test_config_errors_name_the_key_not_the_secret(
    tmp_path: Path, mutate: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(mutate(yaml.safe_dump(raw_config(), sort_keys=False, width=200)), "utf-8")
    with pytest.raises(ConfigError) as caught:
        build_runtimes(load_settings(config), source=str(config))
    assert_no_secret(str(caught.value), "ConfigError")
    assert str(config) in str(caught.value)
    assert check(config) == 2
    out, err = capsys.readouterr()
    assert_no_secret(out + err, "scim-gateway check")


def check(config: Path) -> int:
    try:
        return main(["check", "--config", str(config)])
    except SystemExit as exit:  # a file that does not load exits at once
        return int(str(exit.code))


def test_check_and_render_print_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(raw_config()), "utf-8")
    assert check(config) == 0
    user = tmp_path / "user.json"
    user.write_text(
        json.dumps({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b"})
    )
    for app in ("key", "bearer", "basic", "oauth"):
        code = main(
            [
                "render",
                "--config",
                str(config),
                "--app",
                app,
                "--method",
                "POST",
                "--path",
                "/Users",
                "--body",
                str(user),
            ]
        )
        assert code == 0, app
    out, err = capsys.readouterr()
    assert "POST" in out
    assert_no_secret(out + err, "check and render")
