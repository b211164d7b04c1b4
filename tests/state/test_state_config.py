"""The ``state:`` and ``admin:`` sections: secret references, checks, and what they never echo."""

from __future__ import annotations

from typing import Any

import pytest
from support import TOKEN, digest

from gateway.config import ConfigError, parse_settings
from gateway.state import build_audit

APPS = {
    "crm": {"adapter": "memory", "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]}}
}


def settings(**top: Any) -> Any:
    return parse_settings({"apps": APPS, **top}, source="/etc/scim/gateway.yaml")


def test_url_and_checkpoint_key_are_secret_references(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATE_URL", "postgresql://gw:pa55word@db:5432/gw")
    monkeypatch.setenv("AUDIT_KEY", "k" * 32)
    state = {"url": "${env:STATE_URL}", "audit": {"checkpoint_key": "${env:AUDIT_KEY}"}}
    loaded = settings(state=state)
    assert loaded.state.url is not None
    assert loaded.state.url.get_secret_value() == "postgresql://gw:pa55word@db:5432/gw"
    assert "pa55word" not in repr(loaded) and "kkkk" not in repr(loaded)


def test_an_unknown_scheme_is_refused_without_echoing_the_url() -> None:
    with pytest.raises(ConfigError) as caught:
        settings(state={"url": "mysql://gw:pa55word@db/gw"})
    assert "state.url" in str(caught.value) and "pa55word" not in str(caught.value)


def test_retention_needs_a_checkpoint_key() -> None:
    with pytest.raises(ConfigError, match="retention_days needs checkpoint_key"):
        settings(state={"audit": {"retention_days": 90}})


def test_a_served_config_is_audited_by_default_and_can_opt_out() -> None:
    assert build_audit(settings(), "/etc/scim/gateway.yaml") is not None
    off = settings(state={"audit": {"enabled": False}})
    assert build_audit(off, "/etc/scim/gateway.yaml") is None
    assert build_audit(settings(), "<config>") is None  # settings built in code: no default file


def test_admin_tokens_use_the_apps_token_form() -> None:
    loaded = settings(admin={"tokens": [{"name": "auditor", "sha256": digest("x")}]})
    assert loaded.admin is not None and loaded.admin.tokens[0].name == "auditor"
