"""Small builders for the IdP flows through the REST adapter (tests/idp_rest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from idp.helpers import GROUP_URN, Scim, Wire
from idp_rest.legacy import Legacy


@dataclass
class App:
    """One legacy app behind the gateway: SCIM in, and the app's own view of the result."""

    name: str
    scim: Scim
    wire: Wire
    legacy: Legacy

    @staticmethod
    def unique(prefix: str) -> str:
        """A fresh name, valid as a Redmine login too (Redmine is shared by the session)."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"


def work_email(address: str) -> list[dict[str, Any]]:
    return [{"type": "work", "value": address, "primary": True}]


async def person(app: App, prefix: str = "user", **extra: Any) -> dict[str, Any]:
    """A user with a fresh userName and a work email (Redmine requires one)."""
    user_name = app.unique(prefix)
    extra.setdefault("emails", work_email(f"{user_name}@example.com"))
    return await app.scim.user(user_name, **extra)


async def people(app: App, count: int, prefix: str = "member") -> list[str]:
    return [(await person(app, f"{prefix}{n}"))["id"] for n in range(count)]


async def team(app: App, members: list[str] | tuple[str, ...] = (), prefix: str = "Team") -> str:
    """A group with a fresh displayName (and these members), by its SCIM id."""
    created = await app.scim.group(app.unique(prefix), members)
    assert created["schemas"] == [GROUP_URN]
    return str(created["id"])
