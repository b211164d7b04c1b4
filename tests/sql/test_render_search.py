"""`scim-gateway render --method GET` on the payroll app: the SELECT a filter becomes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml

from gateway.cli import main

from .conftest import Payroll


async def render(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str], path: str
) -> tuple[int, str, str]:
    app = {
        "adapter": "sql",
        "mapping": "payroll",
        "settings": payroll.settings(),
        "auth": {"tokens": [{"name": "idp", "secret": "render-token-0123456789abcdef"}]},
    }
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump({"apps": {"payroll": app}}), "utf-8")
    args = ["render", "-c", str(config), "--app", "payroll", "--method", "GET", "--path", path]
    code = await asyncio.to_thread(main, args)
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_filter_shows_as_the_where_clause_with_its_values(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await render(
        payroll, tmp_path, capsys, '/Users?filter=userName eq "BJensen"&count=5&startIndex=11'
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "# call 1 of 1"
    assert lines[1].startswith("SQL SELECT ") and f'"{payroll.schema}"' in lines[1]
    assert "logon_name" in lines[1].split(" WHERE ", 1)[1]
    values = yaml.safe_load("\n".join(lines[3:]))
    assert "bjensen" in [str(v).lower() for v in values.values()]
    assert list(values.values())[-2:] == [5, 10]  # limit, offset
    assert payroll.dsn not in out


async def test_a_sort_shows_as_order_by(
    payroll: Payroll, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = await render(payroll, tmp_path, capsys, "/Groups?sortBy=displayName")
    assert code == 0
    assert "ORDER BY" in out and "unit_nm" in out.split("ORDER BY", 1)[1]
