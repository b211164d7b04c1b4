"""Credential configuration: kinds, presets, validation that names the key, and no secret in repr.

And ``scim-gateway token new``: a strong token printed once, with the config lines
that hold its digest.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.config import (
    ENTRA_PROVISIONING_AUDIENCE,
    AuthConfig,
    ConfigError,
    TokenCredential,
    parse_settings,
)


def settings_with(auth: dict[str, Any]) -> Any:
    return parse_settings({"apps": {"crm": {"adapter": "memory", "auth": auth}}})


def test_the_entra_preset_fills_in_issuer_key_set_and_audience() -> None:
    tenant = "cbb1a5ac-f33b-45fa-9bf5-f37db0fed422"
    auth = AuthConfig.model_validate(
        {"jwt": [{"name": "entra", "preset": "entra", "tenant_id": tenant}]}
    )
    cred = auth.jwt[0]
    assert cred.issuer == f"https://sts.windows.net/{tenant}/"
    assert cred.jwks_url == f"https://login.microsoftonline.com/{tenant}/discovery/v2.0/keys"
    assert (
        cred.audience == [ENTRA_PROVISIONING_AUDIENCE] == ["8adf8e6e-67b2-4cf2-a259-e3dc5476c621"]
    )
    assert cred.algorithms == ["RS256"]


def test_a_gallery_app_overrides_the_entra_audience() -> None:
    raw = {
        "name": "entra",
        "preset": "entra",
        "tenant_id": "contoso.onmicrosoft.com",
        "audience": "gallery-id",
    }
    assert AuthConfig.model_validate({"jwt": [raw]}).jwt[0].audience == ["gallery-id"]


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({}, "give at least one credential"),
        ({"tokens": []}, "give at least one credential"),
        (
            {
                "tokens": [{"name": "a", "secret": "x"}],
                "basic": [{"name": "a", "username": "u", "password": "p"}],
            },
            "credential names must be unique; repeated: a",
        ),
        (
            {"basic": [{"name": "b", "username": "u"}]},
            "give exactly one of 'password_sha256' or 'password'",
        ),
        ({"jwt": [{"name": "j", "preset": "entra"}]}, "preset 'entra' needs 'tenant_id'"),
        ({"jwt": [{"name": "j", "issuer": "https://i/"}]}, "give jwks_url, audience (or a preset)"),
        (
            {
                "jwt": [
                    {
                        "name": "j",
                        "issuer": "https://i/",
                        "audience": "a",
                        "jwks_url": "https://i/k",
                        "algorithms": ["HS256"],
                    }
                ]
            },
            "algorithms.0",
        ),
        (
            {
                "jwt": [
                    {
                        "name": "j",
                        "issuer": "https://i/",
                        "audience": "a",
                        "jwks_url": "https://i/k",
                        "algorithms": ["none"],
                    }
                ]
            },
            "algorithms.0",
        ),
        (
            {
                "jwt": [
                    {
                        "name": "j",
                        "issuer": "https://i/",
                        "audience": "a",
                        "jwks_url": "http://keys.example/k",
                    }
                ]
            },
            "jwks_url must be https",
        ),
    ],
)
def test_bad_credentials_are_reported_with_the_key(auth: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        settings_with(auth)
    assert "apps.crm.auth" in str(err.value)
    assert message in str(err.value)


def test_no_secret_shows_in_repr_or_str_of_the_settings() -> None:
    settings = settings_with(
        {
            "tokens": [{"name": "t", "secret": "t0ken-SECRET-value"}],
            "basic": [
                {"name": "b", "username": "svc", "password": "pa55-SECRET-value"},
                {
                    "name": "c",
                    "username": "svc2",
                    "password_sha256": hashlib.sha256(b"pw").hexdigest(),
                },
            ],
        }
    )
    for text in (repr(settings), str(settings), repr(settings.apps["crm"].auth)):
        assert "SECRET" not in text
        assert hashlib.sha256(b"pw").hexdigest() not in text
    assert "**********" in repr(settings.apps["crm"].auth)


def test_token_new_prints_the_token_once_and_its_config_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "new", "--app", "crm", "--name", "okta-prod", "--read-only"]) == 0
    out = capsys.readouterr().out
    token_line, where, *config_lines = out.splitlines()
    token = token_line.rsplit(" ", 1)[1]
    assert len(token) >= 43  # 32 random bytes, URL-safe base64
    assert out.count(token) == 1  # shown once; the config holds only its digest
    assert "apps.crm.auth.tokens" in where
    [entry] = yaml.safe_load("\n".join(config_lines))
    cred = TokenCredential.model_validate(entry)
    assert (cred.name, cred.read_only) == ("okta-prod", True)
    assert cred.digest() == hashlib.sha256(token.encode()).digest()


def test_token_new_makes_a_new_token_each_time(capsys: pytest.CaptureFixture[str]) -> None:
    main(["token", "new", "--name", "a"])
    main(["token", "new", "--name", "a"])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("token")]
    assert len(set(lines)) == 2
