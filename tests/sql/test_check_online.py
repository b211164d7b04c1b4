"""`scim-gateway check`: payroll's columns online, and a group mapping that cannot create."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main

from .conftest import Payroll


def write(tmp_path: Path, settings: dict[str, Any]) -> Path:
    app = {
        "adapter": "sql",
        "mapping": "payroll",
        "settings": settings,
        "auth": {"tokens": [{"name": "idp", "secret": "check-online-token-0123456789"}]},
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump({"apps": {"payroll": app}}), "utf-8")
    return path


async def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, ["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_shipped_payroll_settings_pass_online(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await check(capsys, "--online", "-c", str(write(tmp_path, payroll.settings())))
    assert (code, err) == (0, "")
    assert "each reached online" in out


async def test_a_column_typo_passes_check_and_fails_online(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = payroll.settings()
    settings["users"]["unique"] = [{"column": "logon_nme", "ignore_case": True}]
    path = write(tmp_path, settings)
    assert (await check(capsys, "-c", str(path)))[0] == 0  # offline: nothing can tell
    code, _, err = await check(capsys, "--online", "-c", str(path))
    assert code == 2
    assert f"{path}: apps.payroll.settings.users.unique: " in err and "'logon_nme'" in err
    assert payroll.dsn not in err


async def test_a_database_that_cannot_be_reached_fails_online_without_the_dsn(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = "postgresql://scim:hunter2-secret@127.0.0.1:9/payroll"
    path = write(tmp_path, {**payroll.settings(), "dsn": dsn, "connect_timeout": 2})
    code, _, err = await check(capsys, "--online", "-c", str(path))
    assert code == 2 and f"{path}: apps.payroll: cannot reach the app: " in err
    assert "hunter2" not in err


async def test_a_provided_group_id_the_mapping_never_writes_fails_check(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = payroll.settings()
    settings["groups"]["id"] = {"column": "unit_id", "generated": "provided"}
    code, _, err = await check(capsys, "-c", str(write(tmp_path, settings)))
    assert code == 2
    assert (
        "apps.payroll.settings.groups.id.generated: 'provided', but the mapping writes no 'unit_id'"
    ) in err


def test_serve_with_a_column_typo_says_so_without_a_traceback(
    payroll: Payroll, tmp_path: Path
) -> None:
    settings = payroll.settings()
    settings["users"]["unique"] = [{"column": "logon_nme", "ignore_case": True}]
    path = write(tmp_path, settings)
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "-c", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "scim-gateway serve: configuration error:\n" in proc.stderr
    assert "apps.payroll.settings.users.unique: " in proc.stderr
