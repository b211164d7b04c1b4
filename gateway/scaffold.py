"""``scim-gateway new-adapter NAME``: a template adapter package that passes the contract suite.

The package keeps users and groups in a dict, where a real adapter calls its
backend: each method says what to replace. It shows the parts every adapter
has (settings model, capabilities, filters read with the gateway.sdk helpers,
errors of the gateway's types, the contract tests and their pytest settings)
and works out of the box: ``pytest`` in the new folder runs the contract suite
against it. docs/adapters.md is the guide.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["ScaffoldError", "scaffold"]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ScaffoldError(Exception):
    """The name or the target cannot be used; the message says why."""


def scaffold(name: str, parent: Path) -> Path:
    """Write the package ``name`` into ``parent/name``; return that folder."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a usable adapter name: lower-case letters, digits and _, "
            "starting with a letter (it becomes the Python package's name)"
        )
    root = parent / name
    if root.exists():
        raise ScaffoldError(f"{root} exists already; choose another name or folder")
    cls = "".join(part.capitalize() for part in name.split("_")) + "Adapter"
    files = {
        "pyproject.toml": _PYPROJECT,
        "README.md": _README,
        f"{name}/__init__.py": _ADAPTER,
        "tests/test_contract.py": _TESTS,
    }
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("{{name}}", name).replace("{{Class}}", cls), "utf-8")
    return root


_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "scim-gateway-{{name}}"
version = "0.1.0"
description = "A scim-gateway adapter for {{name}}"
requires-python = ">=3.11"
dependencies = ["scim-gateway"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-aiohttp>=1.0"]

# The gateway finds the adapter through this entry point: `adapter: {{name}}` in gateway.yaml.
[project.entry-points."scim_gateway.adapters"]
{{name}} = "{{name}}:{{Class}}"

[tool.setuptools.packages.find]
include = ["{{name}}*"]

# What the contract suite (gateway.testing) needs: async tests without markers
# (pytest-aiohttp brings pytest-asyncio; "auto" runs every async test and fixture
# on it), and the package importable from this folder without installing it.
[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
pythonpath = ["."]
testpaths = ["tests"]
addopts = "--strict-markers -ra"
filterwarnings = ["error"]
"""

_README = """\
# scim-gateway-{{name}}

A scim-gateway adapter, scaffolded by `scim-gateway new-adapter {{name}}`.
It keeps records in memory: replace each method's body with calls to your
backend (see the comments, and the scim-gateway guide docs/adapters.md).

    pip install -e .[test]     # or run pytest here without installing
    pytest                     # the adapter contract suite

In gateway.yaml:

    apps:
      myapp:
        adapter: {{name}}
        settings: {}
        auth: {tokens: [{name: idp, sha256: ...}]}
"""

_ADAPTER = '''\
"""The {{name}} adapter for scim-gateway.

Records are the backend's own dicts (here: SCIM-shaped, since there is no
mapping). Replace the dict ``self._rows`` with calls to the backend; keep the
rules of gateway.sdk (NotFound, Conflict, idempotent member deltas, errors
translated in one place).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from gateway.sdk import (
    Adapter,
    Capabilities,
    Conflict,
    NotFound,
    Page,
    Query,
    Record,
    Ref,
    eq_value,
    record_matches,
)

#: The attribute naming each type uniquely (a group's while unique_group_names).
UNIQUE = {"User": "userName", "Group": "displayName"}


class {{Class}}Settings(BaseModel):
    """The app's ``settings:`` section; add the backend's address and credentials here."""

    model_config = ConfigDict(extra="forbid")
    max_page: int = 1000


class {{Class}}(Adapter):
    settings_model = {{Class}}Settings
    # Declare only what the backend can answer: the gateway asks for nothing else.
    capabilities = Capabilities(
        filter_attributes={
            "User": {"id": frozenset({"eq"}), "username": frozenset({"eq"})},
            "Group": {"id": frozenset({"eq"}), "displayname": frozenset({"eq"})},
        },
        groups=True,
    )

    def __init__(self, settings: BaseModel | None = None, **kwargs: Any) -> None:
        super().__init__(settings or {{Class}}Settings(), **kwargs)
        self._rows: dict[str, dict[str, dict[str, Any]]] = {"User": {}, "Group": {}}
        self._members: dict[str, list[str]] = {}
        self._ids = itertools.count(1)

    async def open(self) -> None:
        """Connect to the backend (a connection pool, an HTTP session)."""

    async def aclose(self) -> None:
        """Close what open() opened."""

    # -- reading -------------------------------------------------------------------

    def _row(self, resource_type: str, id: str) -> dict[str, Any]:
        row = self._rows[resource_type].get(id)
        if row is None:
            raise NotFound(f"no {resource_type} {id}")
        return row

    def _record(self, resource_type: str, id: str) -> Record:
        record = Record(id, dict(self._row(resource_type, id)))  # a fresh dict, never our own
        if resource_type == "Group":
            record.members = [Ref(m, "User") for m in self._members[id]]
        return record

    async def get(self, resource_type: str, id: str) -> Record:
        return self._record(resource_type, id)

    async def search(self, query: Query) -> Page:
        rows = self._rows[query.resource_type]
        # An `id eq` term is what a backend looks up by key (`userName eq` by an index).
        wanted = eq_value(query.filter, "id")
        ids = list(rows) if wanted is None else [i for i in (str(wanted),) if i in rows]
        # The whole filter is checked on the candidates (SCIM-shaped, with their id).
        found = [
            i
            for i in sorted(ids, key=int)
            if record_matches(query.filter, {**rows[i], "id": i}, query.resource_type)
        ]
        start = query.start_index - 1
        page = found[start : start + query.count]
        return Page([self._record(query.resource_type, i) for i in page], len(found))

    # -- writing -------------------------------------------------------------------

    def _check_unique(self, resource_type: str, data: dict[str, Any], own: str | None) -> None:
        attribute = UNIQUE[resource_type]
        value = data.get(attribute)
        checked = resource_type == "User" or self.unique_group_names
        if not checked or not isinstance(value, str):
            return
        for id, row in self._rows[resource_type].items():
            if id != own and str(row.get(attribute, "")).lower() == value.lower():
                raise Conflict(f"{attribute} is already taken")

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        self._check_unique(resource_type, data, None)
        id = str(next(self._ids))
        self._rows[resource_type][id] = dict(data)
        if resource_type == "Group":
            self._members[id] = list(dict.fromkeys(members))
        return self._record(resource_type, id)

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        # `changes`: top-level fields that change; None removes the field. Fields not
        # named keep their values.
        row = self._row(resource_type, id)
        self._check_unique(resource_type, changes, id)
        for key, value in changes.items():
            if value is None:
                row.pop(key, None)
            else:
                row[key] = value
        return self._record(resource_type, id)

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        self._row(resource_type, id)
        del self._rows[resource_type][id]
        if resource_type == "Group":
            del self._members[id]
        else:
            for members in self._members.values():
                if id in members:
                    members.remove(id)

    # -- membership: deltas, idempotent --------------------------------------------

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        self._row("Group", group_id)
        current = self._members[group_id]
        current.extend(m for m in dict.fromkeys(member_ids) if m not in current)

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        self._row("Group", group_id)
        gone = set(member_ids)
        self._members[group_id] = [m for m in self._members[group_id] if m not in gone]
'''

_TESTS = '''\
"""The adapter passes the scim-gateway adapter contract (gateway.testing)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.testing import AdapterContract
from {{name}} import {{Class}}, {{Class}}Settings


class Test{{Class}}(AdapterContract):
    @pytest.fixture
    async def adapter(self) -> AsyncIterator[{{Class}}]:
        adapter = {{Class}}({{Class}}Settings(), app="test")
        await adapter.open()
        yield adapter
        await adapter.aclose()
'''
