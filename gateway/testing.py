"""The adapter contract suite, for any adapter package to subclass.

    import pytest
    from gateway.testing import AdapterContract

    class TestMyAdapter(AdapterContract):
        @pytest.fixture
        async def adapter(self):
            adapter = MyAdapter(MySettings(...), app="test")
            await adapter.open()
            yield adapter
            await adapter.aclose()

Override :meth:`AdapterContract.user_data` / :meth:`AdapterContract.group_data`
and set ``user_name_field`` / ``group_name_field`` when the adapter's records are
not SCIM-shaped. Tests for capabilities the adapter does not declare skip
themselves. The suite needs pytest with asyncio support: pytest-aiohttp or
pytest-asyncio with ``asyncio_mode = "auto"`` (docs/adapters.md shows the settings).
"""

from __future__ import annotations

from typing import Any

import pytest
from scim2_models.path import ScimFilter

from gateway.sdk import Adapter, Conflict, NotFound, PreconditionFailed, Query, Record

__all__ = ["AdapterContract"]


class _Abandoned(Exception):
    """Raised inside a transaction by the suite, to see it rolled back."""


class AdapterContract:
    """Every adapter passes these; each test name states one rule of gateway.sdk."""

    # -- sample data, in the adapter's own record shape ------------------------------

    def user_data(self, n: int) -> dict[str, Any]:
        return {
            "userName": f"contract.user{n}@example.com",
            "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
            "active": True,
        }

    def group_data(self, n: int) -> dict[str, Any]:
        return {"displayName": f"Contract Group {n}"}

    #: The record field holding the user's unique name (``login`` in many legacy apps).
    user_name_field = "userName"

    def user_name(self, record: Record) -> str:
        return str(record.data[self.user_name_field])

    def with_user_name(self, data: dict[str, Any], user_name: str) -> dict[str, Any]:
        return {**data, self.user_name_field: user_name}

    def user_name_change(self, user_name: str) -> dict[str, Any]:
        return {self.user_name_field: user_name}

    #: The record field holding a group's displayName (``name`` in many legacy apps).
    group_name_field = "displayName"

    def group_name(self, record: Record) -> str:
        return str(record.data[self.group_name_field])

    # -- helpers ---------------------------------------------------------------------

    @staticmethod
    def _skip_unless(condition: bool, why: str) -> None:
        if not condition:
            pytest.skip(f"the adapter does not declare {why}")

    @staticmethod
    def _filter(text: str) -> Any:
        return ScimFilter(text).ast

    # -- users -----------------------------------------------------------------------

    async def test_a_created_user_can_be_read_back(self, adapter: Adapter) -> None:
        created = await adapter.create("User", self.user_data(1))
        assert created.id
        fetched = await adapter.get("User", created.id)
        assert fetched.id == created.id
        assert self.user_name(fetched) == self.user_name(created)

    async def test_reading_an_unknown_id_raises_not_found(self, adapter: Adapter) -> None:
        with pytest.raises(NotFound):
            await adapter.get("User", "no-such-id-0000")

    async def test_updating_an_unknown_id_raises_not_found(self, adapter: Adapter) -> None:
        with pytest.raises(NotFound):
            await adapter.update("User", "no-such-id-0000", self.user_name_change("x@example.com"))

    async def test_deleting_an_unknown_id_raises_not_found(self, adapter: Adapter) -> None:
        with pytest.raises(NotFound):
            await adapter.delete("User", "no-such-id-0000")

    async def test_a_deleted_user_is_gone(self, adapter: Adapter) -> None:
        created = await adapter.create("User", self.user_data(2))
        await adapter.delete("User", created.id)
        with pytest.raises(NotFound):
            await adapter.get("User", created.id)

    async def test_a_duplicate_user_name_raises_conflict_and_creates_nothing(
        self, adapter: Adapter
    ) -> None:
        first = await adapter.create("User", self.user_data(3))
        duplicate = self.with_user_name(self.user_data(4), self.user_name(first).upper())
        with pytest.raises(Conflict):
            await adapter.create("User", duplicate)
        page = await adapter.search(Query("User", count=1000))
        names = [self.user_name(r).lower() for r in page.records]
        assert names.count(self.user_name(first).lower()) == 1

    async def test_an_update_to_a_taken_user_name_raises_conflict_and_changes_nothing(
        self, adapter: Adapter
    ) -> None:
        one = await adapter.create("User", self.user_data(5))
        two = await adapter.create("User", self.user_data(6))
        with pytest.raises(Conflict):
            await adapter.update("User", two.id, self.user_name_change(self.user_name(one)))
        assert self.user_name(await adapter.get("User", two.id)) == self.user_name(two)

    async def test_an_update_changes_only_the_given_keys(self, adapter: Adapter) -> None:
        created = await adapter.create("User", self.user_data(7))
        updated = await adapter.update(
            "User", created.id, self.user_name_change("renamed7@example.com")
        )
        assert self.user_name(updated) == "renamed7@example.com"
        fetched = await adapter.get("User", created.id)
        assert self.user_name(fetched) == "renamed7@example.com"
        # The fields this test wrote, but the name, keep their values; fields the app
        # maintains itself (Redmine's updated_on, a version) may change with any update.
        renamed = self.user_name_change("")
        written = [k for k in self.user_data(7) if k not in renamed and k in created.data]
        untouched = {k: created.data[k] for k in written}
        assert written and {k: fetched.data.get(k) for k in written} == untouched

    async def test_search_pages_in_a_stable_order_and_counts_every_match(
        self, adapter: Adapter
    ) -> None:
        for n in range(10, 15):
            await adapter.create("User", self.user_data(n))
        full = await adapter.search(Query("User", count=1000))
        first = await adapter.search(Query("User", start_index=1, count=2))
        second = await adapter.search(Query("User", start_index=3, count=2))
        assert first.total == second.total == full.total >= 5
        ids = [r.id for r in first.records + second.records]
        assert ids == [r.id for r in full.records[:4]]
        assert len(set(ids)) == 4

    async def test_a_search_past_the_end_is_empty_with_the_total(self, adapter: Adapter) -> None:
        await adapter.create("User", self.user_data(16))
        page = await adapter.search(Query("User", start_index=10_000, count=10))
        assert page.records == []
        assert page.total >= 1

    async def test_a_user_name_eq_filter_finds_exactly_that_user(self, adapter: Adapter) -> None:
        self._skip_unless(
            adapter.capabilities.can_filter("User", "username", "eq"), "filtering on userName"
        )
        created = await adapter.create("User", self.user_data(17))
        await adapter.create("User", self.user_data(18))
        name = self.user_name(created)
        page = await adapter.search(Query("User", self._filter(f'userName eq "{name}"')))
        assert [r.id for r in page.records] == [created.id]
        assert page.total == 1

    async def test_a_filter_matching_nothing_gives_an_empty_page(self, adapter: Adapter) -> None:
        self._skip_unless(
            adapter.capabilities.can_filter("User", "username", "eq"), "filtering on userName"
        )
        page = await adapter.search(Query("User", self._filter('userName eq "nobody-at-all"')))
        assert (page.records, page.total) == ([], 0)

    async def test_sorting_by_user_name_orders_both_ways(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.sort, "sorting")
        for n in (23, 21, 22):
            await adapter.create("User", self.user_data(n))
        up = await adapter.search(Query("User", sort_by="userName", count=1000))
        down = await adapter.search(Query("User", sort_by="userName", descending=True, count=1000))
        names = [self.user_name(r).lower() for r in up.records]
        assert names == sorted(names)
        assert [r.id for r in down.records] == [r.id for r in reversed(up.records)]

    # -- versions --------------------------------------------------------------------

    async def test_every_write_changes_the_version(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.versions, "versions")
        created = await adapter.create("User", self.user_data(30))
        updated = await adapter.update("User", created.id, self.user_name_change("v30@example.com"))
        assert created.version and updated.version and created.version != updated.version

    async def test_a_stale_version_is_refused_and_changes_nothing(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.versions, "versions")
        created = await adapter.create("User", self.user_data(31))
        await adapter.update("User", created.id, self.user_name_change("v31@example.com"))
        with pytest.raises(PreconditionFailed):
            await adapter.update(
                "User",
                created.id,
                self.user_name_change("stale@example.com"),
                expected_version=created.version,
            )
        with pytest.raises(PreconditionFailed):
            await adapter.delete("User", created.id, expected_version=created.version)
        assert self.user_name(await adapter.get("User", created.id)) == "v31@example.com"

    async def test_exact_versions_are_never_used_again(self, adapter: Adapter) -> None:
        """Capabilities.exact_versions: the gateway reuses a list's JSON while the version
        is the same, so every write must give a version the record never had."""
        self._skip_unless(adapter.capabilities.exact_versions, "exact_versions")
        created = await adapter.create("User", self.user_data(32))
        seen = [created.version]
        for n in (1, 2):
            change = self.user_name_change(f"v32-{n}@example.com")
            seen.append((await adapter.update("User", created.id, change)).version)
        assert (await adapter.get("User", created.id)).version == seen[-1]
        assert all(seen) and len(set(seen)) == len(seen)
        if adapter.capabilities.groups:  # a group's members are part of what it shows
            group = await adapter.create("Group", self.group_data(4))
            seen = [group.version]
            await adapter.add_members(group.id, [created.id])
            seen.append((await adapter.get("Group", group.id)).version)
            await adapter.remove_members(group.id, [created.id])
            seen.append((await adapter.get("Group", group.id)).version)
            assert all(seen) and len(set(seen)) == len(seen)

    # -- transactions ----------------------------------------------------------------

    async def test_writes_inside_a_transaction_that_raises_are_rolled_back(
        self, adapter: Adapter
    ) -> None:
        self._skip_unless(adapter.capabilities.transactions, "transactions")
        created = await adapter.create("User", self.user_data(35))
        with pytest.raises(_Abandoned):
            async with adapter.transaction():
                await adapter.update("User", created.id, self.user_name_change("t35@example.com"))
                assert self.user_name(await adapter.get("User", created.id)) == "t35@example.com"
                raise _Abandoned
        assert self.user_name(await adapter.get("User", created.id)) == self.user_name(created)

    async def test_writes_inside_a_transaction_that_ends_are_kept(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.transactions, "transactions")
        created = await adapter.create("User", self.user_data(36))
        async with adapter.transaction():
            await adapter.update("User", created.id, self.user_name_change("t36@example.com"))
        assert self.user_name(await adapter.get("User", created.id)) == "t36@example.com"

    # -- groups ----------------------------------------------------------------------

    async def _member_ids(self, adapter: Adapter, group_id: str) -> set[str]:
        group = await adapter.get("Group", group_id)
        return {m.value for m in group.members or ()}

    async def test_member_adds_are_idempotent_deltas(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        a = await adapter.create("User", self.user_data(40))
        b = await adapter.create("User", self.user_data(41))
        group = await adapter.create("Group", self.group_data(1))
        await adapter.add_members(group.id, [a.id])
        await adapter.add_members(group.id, [a.id, b.id])
        await adapter.add_members(group.id, [b.id])
        assert await self._member_ids(adapter, group.id) == {a.id, b.id}

    async def test_removing_a_member_keeps_the_others(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        users = [await adapter.create("User", self.user_data(n)) for n in (42, 43, 44)]
        group = await adapter.create("Group", self.group_data(2))
        await adapter.add_members(group.id, [u.id for u in users])
        await adapter.remove_members(group.id, [users[1].id])
        await adapter.remove_members(group.id, [users[1].id])  # absent: not an error
        assert await self._member_ids(adapter, group.id) == {users[0].id, users[2].id}

    async def test_a_group_can_be_created_with_members(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        user = await adapter.create("User", self.user_data(45))
        group = await adapter.create("Group", self.group_data(3), members=[user.id])
        assert await self._member_ids(adapter, group.id) == {user.id}

    async def test_a_read_without_members_still_reads_the_group(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        self._skip_unless(adapter.capabilities.skip_members, "skip_members")
        user = await adapter.create("User", self.user_data(60))  # numbers no other test uses:
        group = await adapter.create("Group", self.group_data(9), members=[user.id])  # shared apps
        # Declared: get() takes members=False (the sdk's Adapter.get says so).
        found: Record = await adapter.get("Group", group.id, members=False)  # type: ignore[call-arg]
        assert found.id == group.id  # members may be left unread (None), or come anyway
        page = await adapter.search(Query("Group", count=10, members=False))
        assert group.id in {r.id for r in page.records}
        assert await self._member_ids(adapter, group.id) == {user.id}  # a full read still has it

    async def test_a_deleted_user_leaves_its_groups(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        keep = await adapter.create("User", self.user_data(46))
        gone = await adapter.create("User", self.user_data(47))
        group = await adapter.create("Group", self.group_data(4))
        await adapter.add_members(group.id, [keep.id, gone.id])
        await adapter.delete("User", gone.id)
        assert await self._member_ids(adapter, group.id) == {keep.id}

    async def test_a_users_groups_are_reported_where_the_adapter_knows_them(
        self, adapter: Adapter
    ) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        user = await adapter.create("User", self.user_data(48))
        group = await adapter.create("Group", self.group_data(6), members=[user.id])
        groups = (await adapter.get("User", user.id)).groups
        if groups is None:
            pytest.skip("the adapter does not report a user's groups")
        assert [g.value for g in groups] == [group.id]

    async def test_a_deleted_group_is_gone(self, adapter: Adapter) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        group = await adapter.create("Group", self.group_data(5))
        await adapter.delete("Group", group.id)
        with pytest.raises(NotFound):
            await adapter.get("Group", group.id)

    # -- group names (unique_group_names, on by default) --------------------------------

    async def test_a_taken_group_name_raises_conflict_and_creates_nothing(
        self, adapter: Adapter
    ) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        assert adapter.unique_group_names, "group names are unique unless the app says otherwise"
        first = await adapter.create("Group", self.group_data(7))
        taken = {**self.group_data(8), self.group_name_field: self.group_name(first).upper()}
        with pytest.raises(Conflict):
            await adapter.create("Group", taken)
        page = await adapter.search(Query("Group", count=1000))
        names = [self.group_name(r).lower() for r in page.records]
        assert names.count(self.group_name(first).lower()) == 1

    async def test_renaming_a_group_to_a_taken_name_raises_conflict_and_changes_nothing(
        self, adapter: Adapter
    ) -> None:
        self._skip_unless(adapter.capabilities.groups, "groups")
        one = await adapter.create("Group", self.group_data(11))
        two = await adapter.create("Group", self.group_data(12))
        with pytest.raises(Conflict):
            await adapter.update("Group", two.id, {self.group_name_field: self.group_name(one)})
        assert self.group_name(await adapter.get("Group", two.id)) == self.group_name(two)
        # Its own name again (in another case) is no conflict.
        renamed = self.group_name(two).upper()
        await adapter.update("Group", two.id, {self.group_name_field: renamed})
        assert self.group_name(await adapter.get("Group", two.id)) == renamed
