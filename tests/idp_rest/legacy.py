"""What a legacy app holds, read through the app's own API (never through the gateway).

``AcmeHrApi`` reads Acme HR's ``/api/v1`` with its ``X-Api-Key``; ``RedmineApi`` reads
Redmine's REST API with the admin key (tests/e2e/redmine.py). Both answer the same
questions, in the app's own terms: ``status`` is the app's own value (Acme HR
``"enabled"``/``"suspended"``, Redmine 1/3), compared with the app's ``ENABLED`` and
``DISABLED``; member ids are the app's ids as text (the SCIM ids).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from e2e.redmine import RedmineClient


@dataclass(frozen=True)
class LegacyUser:
    """An account as the app's own API shows it."""

    login: str
    given: str | None
    family: str | None
    mail: str | None
    status: Any
    raw: dict[str, Any]


class Legacy(Protocol):
    ENABLED: Any
    DISABLED: Any

    async def user(self, id: str) -> LegacyUser | None:
        """The account with that id; None when the app has none."""
        ...

    async def group_name(self, id: str) -> str | None:
        """The group's name; None when the app has no such group."""
        ...

    async def members(self, id: str) -> set[str]:
        """The ids of the group's members, as the app lists them."""
        ...


class AcmeHrApi:
    """Acme HR's ``GET /api/v1/accounts/{id}`` and ``GET /api/v1/teams/{id}``."""

    ENABLED, DISABLED = "enabled", "suspended"

    def __init__(self, session: aiohttp.ClientSession, api_url: str) -> None:
        self.session = session
        self.api_url = api_url

    async def _get(self, path: str, root: str) -> dict[str, Any] | None:
        async with self.session.get(f"{self.api_url}{path}") as resp:
            if resp.status == 404:
                return None
            assert resp.status == 200, await resp.text()
            body: dict[str, Any] = (await resp.json())[root]
            return body

    async def account(self, id: str) -> dict[str, Any] | None:
        return await self._get(f"/accounts/{id}", "account")

    async def team(self, id: str) -> dict[str, Any] | None:
        return await self._get(f"/teams/{id}", "team")

    async def user(self, id: str) -> LegacyUser | None:
        found = await self.account(id)
        if found is None:
            return None
        return LegacyUser(
            found["login"], found["given"], found["family"], found["mail"], found["status"], found
        )

    async def group_name(self, id: str) -> str | None:
        team = await self.team(id)
        return None if team is None else str(team["name"])

    async def members(self, id: str) -> set[str]:
        team = await self.team(id)
        assert team is not None, f"Acme HR has no team {id}"
        return set(team["member_ids"])


class RedmineApi:
    """Redmine's ``GET /users/{id}.json`` and ``GET /groups/{id}.json?include=users``."""

    ENABLED, DISABLED = 1, 3  # active, locked

    def __init__(self, client: RedmineClient) -> None:
        self.client = client

    async def user(self, id: str) -> LegacyUser | None:
        found = await self.client.get_user(int(id))
        if found is None:
            return None
        return LegacyUser(
            found["login"],
            found["firstname"],
            found["lastname"],
            found["mail"],
            found["status"],
            found,
        )

    async def group_name(self, id: str) -> str | None:
        group = await self.client.get_group(int(id), include=())
        return None if group is None else str(group["name"])

    async def members(self, id: str) -> set[str]:
        return {str(member) for member in await self.client.member_ids(int(id))}

    async def can_log_in(self, login: str, password: str) -> bool:
        """Whether ``login:password`` opens ``/users/current.json`` (HTTP Basic)."""
        token = base64.b64encode(f"{login}:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}"}  # and no admin key
        async with (
            aiohttp.ClientSession(base_url=self.client.base_url) as session,
            session.get("/users/current.json", headers=headers) as resp,
        ):
            return resp.status == 200 and (await resp.json())["user"]["login"] == login
