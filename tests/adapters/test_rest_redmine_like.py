"""The REST adapter on a Redmine-like API: substring filters, one-answer lists, 422 on re-adds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from rest_fakes import RedmineLike, redmine_settings
from rest_support import (
    FieldMapping,
    Opener,
    Recorder,
    ServerFactory,
    opened_fixture,  # noqa: F401 - the `opened` fixture
)
from scim2_models.path import ScimFilter

from adapters.rest import RestAdapter, RestSettings
from gateway.sdk import InvalidFilter, Query, Record
from gateway.testing import AdapterContract

REDMINE_FIELDS = FieldMapping(
    {
        "User": {
            "userName": "login",
            "name.givenName": "firstname",
            "name.familyName": "lastname",
            "emails.value": "mail",
        },
        "Group": {"displayName": "name"},
    }
)


def _filter(text: str) -> Any:
    return ScimFilter(text).ast


async def redmine_adapter(
    aiohttp_server: ServerFactory,
    fake: RedmineLike | None = None,
    recorder: Recorder | None = None,
    **overrides: Any,
) -> RestAdapter:
    app = (fake or RedmineLike()).app()
    if recorder is not None:
        app.middlewares.insert(0, recorder.middleware)
    server = await aiohttp_server(app)
    raw = {**redmine_settings(str(server.make_url(""))), **overrides}
    return RestAdapter(RestSettings.model_validate(raw), app="redmine", mapping=REDMINE_FIELDS)


class TestRestAdapterOnARedmineLikeApi(AdapterContract):
    @pytest.fixture
    async def adapter(self, aiohttp_server: ServerFactory) -> AsyncIterator[RestAdapter]:
        adapter = await redmine_adapter(aiohttp_server)
        await adapter.open()
        yield adapter
        await adapter.aclose()

    user_name_field = "login"

    def user_data(self, n: int) -> dict[str, Any]:
        return {
            "login": f"contract.user{n}",
            "firstname": f"Given{n}",
            "lastname": f"Family{n}",
            "mail": f"contract.user{n}@example.com",
        }

    group_name_field = "name"

    def group_data(self, n: int) -> dict[str, Any]:
        return {"name": f"Contract Group {n}"}


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def redmine(aiohttp_server: ServerFactory, opened: Opener, recorder: Recorder) -> RestAdapter:
    return await opened(await redmine_adapter(aiohttp_server, recorder=recorder))


async def _user(adapter: RestAdapter, login: str, **more: Any) -> Record:
    data = {"login": login, "firstname": "F", "lastname": "L", "mail": f"{login}@example.com"}
    return await adapter.create("User", {**data, **more})


async def test_adding_members_sends_only_the_missing_ones(
    redmine: RestAdapter, recorder: Recorder
) -> None:
    a, b = await _user(redmine, "ann"), await _user(redmine, "bob")
    group = await redmine.create("Group", {"name": "Eng"})
    await redmine.add_members(group.id, [a.id])
    recorder.clear()
    await redmine.add_members(group.id, [a.id, b.id])  # a is in already: Redmine would say 422
    await redmine.add_members(group.id, [b.id])
    posts = [c.body for c in recorder.calls if c.method == "POST"]
    assert posts == [{"user_ids": [int(b.id)]}]  # ids as numbers, one call for both
    assert {m.value for m in (await redmine.get("Group", group.id)).members or ()} == {a.id, b.id}


async def test_removing_an_absent_member_sends_nothing(
    redmine: RestAdapter, recorder: Recorder
) -> None:
    a = await _user(redmine, "ann")
    group = await redmine.create("Group", {"name": "Eng"}, members=[a.id])
    recorder.clear()
    await redmine.remove_members(group.id, ["999"])
    assert [c.method for c in recorder.calls] == ["GET"]


async def test_a_substring_filter_is_checked_exactly(
    redmine: RestAdapter, recorder: Recorder
) -> None:
    ann = await _user(redmine, "ann")
    await _user(redmine, "joanna")
    await _user(redmine, "annette")
    recorder.clear()
    page = await redmine.search(Query("User", _filter('userName eq "ANN"')))
    assert [r.id for r in page.records] == [ann.id]
    assert page.total == 1
    assert recorder.calls[0].query == {"status": "", "name": "ANN", "offset": "0", "limit": "100"}


async def test_two_terms_on_one_parameter_send_one_and_check_both(redmine: RestAdapter) -> None:
    ann = await _user(redmine, "ann")
    await _user(redmine, "ann2", mail="other@example.com")
    both = _filter('userName eq "ann" and emails.value eq "ann@example.com"')
    assert [r.id for r in (await redmine.search(Query("User", both))).records] == [ann.id]
    neither = _filter('userName eq "ann" and emails.value eq "other@example.com"')
    assert (await redmine.search(Query("User", neither))).records == []


async def test_more_candidates_than_max_scan_are_refused(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await opened(await redmine_adapter(aiohttp_server, max_scan=2))
    for login in ("ann", "joanna", "annette"):
        await _user(adapter, login)
    with pytest.raises(InvalidFilter, match="narrow it"):
        await adapter.search(Query("User", _filter('userName eq "ann"')))


async def test_a_filter_nothing_narrows_is_refused_without_reading_the_accounts(
    redmine: RestAdapter, recorder: Recorder
) -> None:
    recorder.clear()
    with pytest.raises(InvalidFilter, match="cannot filter on username"):
        await redmine.search(Query("User", _filter('not (userName eq "ann")')))
    assert recorder.calls == []


async def test_a_list_without_paging_is_filtered_on_any_attribute_in_the_gateway(
    redmine: RestAdapter,
) -> None:
    caps = redmine.capabilities
    assert caps.can_filter("Group", "displayname", "sw")
    assert not caps.can_filter("Group", "members.value", "eq")
    assert not caps.can_filter("User", "displayname", "eq")  # users page: only their parameters
    eng = await redmine.create("Group", {"name": "Engineering"})
    await redmine.create("Group", {"name": "Sales"})
    page = await redmine.search(Query("Group", _filter('displayName sw "eng"')))
    assert [r.id for r in page.records] == [eng.id]
    both = await redmine.search(
        Query("Group", _filter('displayName eq "sales" or displayName eq "engineering"'))
    )
    assert both.total == 2


async def test_an_id_filter_reads_that_record(redmine: RestAdapter, recorder: Recorder) -> None:
    ann = await _user(redmine, "ann")
    recorder.clear()
    found = await redmine.search(Query("User", _filter(f'id eq "{ann.id}"')))
    missing = await redmine.search(Query("User", _filter('id eq "12345"')))
    other = await redmine.search(Query("User", _filter(f'id eq "{ann.id}" and userName eq "x"')))
    assert [r.id for r in found.records] == [ann.id]
    assert (missing.records, missing.total) == ([], 0)
    assert (other.records, other.total) == ([], 0)  # the other terms are checked on the record
    one = f"/users/{ann.id}.json"
    assert recorder.paths() == [one, "/users/12345.json", one]


async def test_a_users_groups_carry_their_names(redmine: RestAdapter) -> None:
    ann = await _user(redmine, "ann")
    group = await redmine.create("Group", {"name": "Eng"}, members=[ann.id])
    groups = (await redmine.get("User", ann.id)).groups or []
    assert [(g.value, g.type, g.display) for g in groups] == [(group.id, "direct", "Eng")]


async def test_membership_may_be_written_as_the_groups_whole_list(
    aiohttp_server: ServerFactory, opened: Opener, recorder: Recorder
) -> None:
    groups = redmine_settings("http://unused")["groups"]
    groups["members"] = {
        "read": {"field": "users", "id": "id"},
        "write": {"field": "user_ids"},
        "id_type": "integer",
    }
    adapter = await opened(await redmine_adapter(aiohttp_server, recorder=recorder, groups=groups))
    a, b = await _user(adapter, "ann"), await _user(adapter, "bob")
    group = await adapter.create("Group", {"name": "Eng"}, members=[a.id])
    recorder.clear()
    await adapter.add_members(group.id, [b.id])
    await adapter.remove_members(group.id, [a.id])
    puts = [c.body for c in recorder.calls if c.method == "PUT"]
    assert puts == [
        {"group": {"user_ids": [int(a.id), int(b.id)]}},
        {"group": {"user_ids": [int(b.id)]}},
    ]
