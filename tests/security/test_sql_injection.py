"""SQL in filters and values is inert: bound as data by the SQL adapter, in both of its modes.

A gateway app on the SQL adapter (the shipped payroll settings and mapping, on a real
PostgreSQL) receives values and filters written to break out of a statement; the test
reads the tables straight from the database: every row is there, every value is stored
as sent, and the filters matched only what they literally say.
"""

from __future__ import annotations

import pytest
from security.hostile import GROUP, PATCH, USER, Client, ClientFactory
from sql.conftest import Payroll
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings

CRM = "/apps/crm/scim/v2"
NAMES = [
    "x'); DROP TABLE emp_master; --",
    "bob' OR '1'='1",
    'al"; DELETE FROM org_unit_member; --',
    "eve:id $1 %s ?",
    "100%_match\\",
    "mallory'||(SELECT current_user)||'",
]
GROUP_NAME = "staff'); TRUNCATE org_unit; --"


@pytest.fixture(params=["table", "statements"])
async def scim(
    request: pytest.FixtureRequest,
    payroll: Payroll,
    aiohttp_client: ClientFactory,
) -> Client:
    settings = parse_settings(
        {
            "apps": {
                "crm": {
                    "adapter": "sql",
                    "mapping": "payroll",
                    "settings": payroll.settings(request.param),
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            }
        }
    )
    return await aiohttp_client(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"})


async def found(scim: Client, text: str) -> list[str]:
    resp = await scim.get(f"{CRM}/Users", params={"filter": text})
    assert resp.status < 500, await resp.text()
    if resp.status != 200:
        return []
    return sorted(r["userName"] for r in (await resp.json())["Resources"])


async def provision(scim: Client) -> tuple[dict[str, str], str]:
    ids = {}
    for n, name in enumerate(NAMES):
        user = {
            "schemas": [USER],
            "userName": name,
            "displayName": f"{name} display",
            "title": "'; UPDATE emp_master SET emp_status = 'T'; --",
            "emails": [{"value": f"user{n}@example.com", "primary": True}],
            "active": True,
        }
        resp = await scim.post(f"{CRM}/Users", json=user)
        assert resp.status == 201, await resp.text()
        ids[name] = (await resp.json())["id"]
    group = {"schemas": [GROUP], "displayName": GROUP_NAME, "members": [{"value": ids[NAMES[0]]}]}
    resp = await scim.post(f"{CRM}/Groups", json=group)
    assert resp.status == 201, await resp.text()
    return ids, (await resp.json())["id"]


async def test_injected_values_are_stored_literally_and_the_tables_stay_intact(
    scim: Client,
    payroll: Payroll,
) -> None:
    ids, gid = await provision(scim)
    rows = await payroll.rows(
        "SELECT logon_name, display_nm, job_title, emp_status FROM emp_master"
    )
    assert sorted(r["logon_name"] for r in rows) == sorted(NAMES)
    for row in rows:
        assert row["display_nm"] == f"{row['logon_name']} display"
        assert row["job_title"] == "'; UPDATE emp_master SET emp_status = 'T'; --"
        assert row["emp_status"] == "A"
    units = await payroll.rows("SELECT unit_nm FROM org_unit")
    assert [u["unit_nm"] for u in units] == [GROUP_NAME]
    assert await payroll.members(gid) == {ids[NAMES[0]]}

    ops = [{"op": "replace", "path": "displayName", "value": "z' WHERE 1=1; --"}]
    resp = await scim.patch(
        f"{CRM}/Users/{ids[NAMES[1]]}", json={"schemas": [PATCH], "Operations": ops}
    )
    assert resp.status == 200, await resp.text()
    row = await payroll.employee(ids[NAMES[1]])
    assert row is not None and row["display_nm"] == "z' WHERE 1=1; --"
    others = await payroll.rows(
        "SELECT display_nm FROM emp_master WHERE emp_no <> $1", int(ids[NAMES[1]])
    )
    assert all(r["display_nm"].endswith(" display") for r in others)


async def test_injected_filters_match_only_what_they_literally_say(
    scim: Client,
    payroll: Payroll,
) -> None:
    await provision(scim)
    for name in NAMES:
        assert await found(scim, f"userName eq {_quoted(name)}") == [name]
    assert await found(scim, "userName eq \"bob' OR '1'='1' --\"") == []
    assert await found(scim, "userName eq \"x' OR 'a'='a\"") == []
    assert await found(scim, 'userName co "%"') == sorted(n for n in NAMES if "%" in n)
    assert await found(scim, 'userName sw "_"') == []
    assert await found(scim, 'userName ew "\\\\"') == ["100%_match\\"]
    assert await found(scim, 'userName co "\'"') == sorted(n for n in NAMES if "'" in n)
    assert await found(scim, 'displayName sw "eve:id $1"') == ["eve:id $1 %s ?"]
    # And nothing was changed by reading.
    rows = await payroll.rows("SELECT logon_name FROM emp_master")
    assert sorted(r["logon_name"] for r in rows) == sorted(NAMES)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
