"""Constants and builders shared by the tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from gateway.config import Settings, parse_settings

PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "test-token-0123456789"
OTHER_TOKEN = "other-app-token-9876543210"
BASE = "/apps/crm/scim/v2"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def make_settings(**app_overrides: Any) -> Settings:
    crm = {
        "adapter": "memory",
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
        **app_overrides,
    }
    other = {
        "adapter": "memory",
        "auth": {"tokens": [{"name": "other", "sha256": digest(OTHER_TOKEN)}]},
    }
    return parse_settings({"apps": {"crm": crm, "hr": other}})
