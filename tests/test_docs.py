"""The README documents every config key and every CLI command."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from adapters.memory import MemorySettings
from gateway.cli import parser
from gateway.config import (
    AppConfig,
    AuditConfig,
    AuthConfig,
    BasicCredential,
    BreakerConfig,
    BulkConfig,
    ConsoleConfig,
    DeprovisionConfig,
    GuardConfig,
    JwtCredential,
    RateLimitConfig,
    ServerConfig,
    Settings,
    StateConfig,
    TlsConfig,
    TokenCredential,
)

README = (Path(__file__).parent.parent / "README.md").read_text("utf-8")


@pytest.mark.parametrize(
    "model",
    [
        Settings,
        ServerConfig,
        AppConfig,
        AuthConfig,
        TokenCredential,
        BulkConfig,
        MemorySettings,
        GuardConfig,
        BasicCredential,
        JwtCredential,
        RateLimitConfig,
        TlsConfig,
        BreakerConfig,
        StateConfig,
        AuditConfig,
        ConsoleConfig,
        DeprovisionConfig,
    ],
)
def test_every_config_key_is_documented(model: type[BaseModel]) -> None:
    missing = [name for name in model.model_fields if f"{name}:" not in README]
    assert missing == [], f"{model.__name__} keys missing from README.md: {missing}"


def test_every_cli_command_is_documented() -> None:
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [name for name in commands if f"scim-gateway {name}" not in README]
    assert missing == []
