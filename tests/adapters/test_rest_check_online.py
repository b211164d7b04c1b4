"""`scim-gateway check --online` for a REST app: Acme HR on loopback, its endpoints checked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from gateway.cli import main
from gateway.demo.legacy_app import create_legacy_app
from gateway.mapping.engine import MAPPINGS_DIR

KEY = "acme-check-online-key-0042"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def write(tmp_path: Path, **changes: Any) -> Path:
    settings = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = settings
        for part in parents:
            node = node[part]
        node[last] = value
    app = {
        "adapter": "rest",
        "mapping": "acme-hr",
        "settings": settings,
        "auth": {"tokens": [{"name": "idp", "secret": "check-online-token-0123456789"}]},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"apps": {"acme": app}}), "utf-8")
    return path


@pytest.fixture
async def acme(aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch) -> str:
    server = await aiohttp_server(create_legacy_app(":memory:", KEY))
    api = str(server.make_url("/api/v1"))
    monkeypatch.setenv("ACME_HR_URL", api)
    monkeypatch.setenv("ACME_HR_API_KEY", KEY)
    async with ClientSession(headers={"X-Api-Key": KEY}) as http:
        account = {"account": {"login": "bjensen", "mail": "b@example.com"}}
        async with http.post(f"{api}/accounts", json=account) as answer:
            assert answer.status == 201, await answer.text()
    return api


async def check(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["check", "--online", "--config", str(path)])
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_shipped_acme_hr_settings_pass_online(
    acme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await check(write(tmp_path), capsys)
    assert (code, err) == (0, "")
    assert "OK (1 app(s): acme, each reached online)" in out


async def test_an_endpoint_typo_passes_check_but_fails_online(
    acme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, users__list__path="/acounts")
    assert main(["check", "--config", str(path)]) == 0  # offline, nothing can tell
    capsys.readouterr()
    code, _, err = await check(path, capsys)
    assert code == 2
    assert f"{path}: apps.acme.settings.users.list: GET /acounts: " in err


async def test_a_get_endpoint_typo_fails_online(
    acme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, users__get__path="/account/{id}")
    code, _, err = await check(path, capsys)
    assert code == 2
    assert f"{path}: apps.acme.settings.users.get: GET /account/{{id}}: " in err


async def test_a_wrong_key_and_an_unreachable_app_fail_online_without_the_key(
    acme: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_HR_API_KEY", "not-the-key-at-all-0000")
    code, _, err = await check(write(tmp_path), capsys)
    assert code == 2 and "apps.acme.settings.users.list: GET /accounts: " in err
    assert "not-the-key-at-all" not in err
    monkeypatch.setenv("ACME_HR_URL", "http://127.0.0.1:9/api/v1")
    code, _, err = await check(write(tmp_path), capsys)
    assert code == 2 and "apps.acme" in err
