"""The REST adapter passes the adapter contract against Acme HR (mappings/acme-hr/rest.yaml)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer
from rest_support import API_KEY, ServerFactory

from adapters.rest import RestAdapter, RestSettings
from gateway.demo.legacy_app import create_legacy_app
from gateway.mapping.engine import MAPPINGS_DIR, load_mapping
from gateway.sdk import InvalidValue, Query
from gateway.testing import AdapterContract

ACME = MAPPINGS_DIR / "acme-hr"


def _fixed_clock() -> datetime:
    # Acme HR moves updated_at on every change; a still clock keeps "only the given keys change"
    # about the fields the gateway writes.
    return datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


async def acme_adapter(
    aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> tuple[RestAdapter, TestServer]:
    server = await aiohttp_server(create_legacy_app(":memory:", API_KEY, clock=_fixed_clock))
    monkeypatch.setenv("ACME_HR_URL", str(server.make_url("/api/v1")))
    monkeypatch.setenv("ACME_HR_API_KEY", API_KEY)
    settings = RestSettings.model_validate(yaml.safe_load((ACME / "rest.yaml").read_text("utf-8")))
    adapter = RestAdapter(settings, app="acme", mapping=load_mapping(ACME))
    await adapter.open()
    return adapter, server


class TestRestAdapterOnAcmeHr(AdapterContract):
    @pytest.fixture
    async def adapter(
        self, aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
    ) -> AsyncIterator[RestAdapter]:
        adapter, _ = await acme_adapter(aiohttp_server, monkeypatch)
        yield adapter
        await adapter.aclose()

    user_name_field = "login"

    def user_data(self, n: int) -> dict[str, Any]:
        return {
            "login": f"contract.user{n}@example.com",
            "given": f"Given{n}",
            "family": f"Family{n}",
            "status": "enabled",
        }

    group_name_field = "name"

    def group_data(self, n: int) -> dict[str, Any]:
        return {"name": f"Contract Group {n}"}


@pytest.fixture
async def acme(
    aiohttp_server: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RestAdapter]:
    adapter, _ = await acme_adapter(aiohttp_server, monkeypatch)
    yield adapter
    await adapter.aclose()


async def test_acme_declares_the_filters_its_api_answers(acme: RestAdapter) -> None:
    caps = acme.capabilities
    assert caps.can_filter("User", "username", "eq")
    assert caps.can_filter("User", "emails.value", "eq")
    assert caps.can_filter("Group", "displayname", "eq")
    assert caps.can_filter("User", "id", "eq")
    assert not caps.can_filter("User", "name.familyname", "eq")  # Acme has no family= filter
    assert not caps.can_filter("User", "username", "sw")
    assert (caps.sort, caps.versions, caps.groups) == (False, False, True)


async def test_a_count_above_the_apis_page_limit_takes_several_calls(acme: RestAdapter) -> None:
    for n in range(205):
        await acme.create("User", {"login": f"bulk{n:03}"})
    page = await acme.search(Query("User", count=1000))
    assert page.total == 205
    assert [r.data["login"] for r in page.records] == [f"bulk{n:03}" for n in range(205)]


async def test_a_team_rename_keeps_its_description(acme: RestAdapter) -> None:
    team = await acme.create("Group", {"name": "Eng", "description": "builders"})
    renamed = await acme.update("Group", team.id, {"name": "Engineering"})
    assert (renamed.data["name"], renamed.data["description"]) == ("Engineering", "builders")
    cleared = await acme.update("Group", team.id, {"description": None})
    assert cleared.data["description"] is None


async def test_teams_page_windows_cut_across_pages(acme: RestAdapter) -> None:
    ids = [(await acme.create("Group", {"name": f"t{n}"})).id for n in range(7)]
    page = await acme.search(Query("Group", start_index=3, count=4))
    assert [r.id for r in page.records] == ids[2:6]
    assert page.total == 7


async def test_adding_an_unknown_account_to_a_team_is_an_invalid_value(acme: RestAdapter) -> None:
    team = await acme.create("Group", {"name": "Ops"})
    with pytest.raises(InvalidValue):
        await acme.add_members(team.id, ["acc_999999"])
