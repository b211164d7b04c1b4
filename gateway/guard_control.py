"""How an operator reaches the deprovisioning guards: admin calls and ``scim-gateway guard``.

Both speak :class:`GuardControl`:

* :class:`StoreGuardControl` works on the guards the config declares, over
  their :class:`~gateway.guard.GuardStore`: the admin HTTP calls use it
  inside the gateway (gateway/http/admin.py). Once the store is shared (the
  state store), a CLI can use it directly too.
* :class:`HttpGuardControl` calls a running gateway's admin endpoint: the
  CLI uses it (``--url``, an admin token from the environment), since this
  process's memory store is not shared with the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from gateway.guard import Guard, GuardState


class GuardError(Exception):
    """The guard could not be reached or asked; the message is for the operator."""


class GuardControl(Protocol):
    async def status(self, app: str) -> GuardState: ...

    async def release(self, app: str, minutes: float | None = None) -> GuardState: ...


class StoreGuardControl:
    def __init__(self, guards: Mapping[str, Guard]) -> None:
        self._guards = guards

    def _guard(self, app: str) -> Guard:
        guard = self._guards.get(app)
        if guard is None:
            known = ", ".join(self._guards) or "none"
            raise GuardError(f"no app {app!r} with a guard (apps with one: {known})")
        return guard

    async def status(self, app: str) -> GuardState:
        return await self._guard(app).status()

    async def release(self, app: str, minutes: float | None = None) -> GuardState:
        return await self._guard(app).release(minutes)


class HttpGuardControl:
    """The admin endpoint of a running gateway (gateway/http/admin.py)."""

    def __init__(self, url: str, token: str, *, timeout: float = 10.0) -> None:
        self._url = url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(self, method: str, path: str, body: Any = None) -> GuardState:
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.request(
                    method, f"{self._url}{path}", json=body, headers=self._headers
                ) as resp,
            ):
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GuardError(f"cannot reach the gateway at {self._url}: {exc!r}") from None
        except ValueError:
            raise GuardError(f"the gateway at {self._url} answered no JSON") from None
        if resp.status != 200 or not isinstance(data, dict):
            detail = data.get("detail") if isinstance(data, dict) else None
            raise GuardError(f"the gateway answered {resp.status}: {detail or 'no detail'}")
        return GuardState(
            str(data["app"]),
            int(data["recent"]),
            tuple(data["held"]),
            tuple(data["released"]),
            data.get("open_until"),
        )

    async def status(self, app: str) -> GuardState:
        return await self._call("GET", f"/admin/guard/{app}")

    async def release(self, app: str, minutes: float | None = None) -> GuardState:
        body = {} if minutes is None else {"minutes": minutes}
        return await self._call("POST", f"/admin/guard/{app}/release", body)


def format_state(state: GuardState) -> str:
    lines = [
        f"app: {state.app}",
        f"deprovisionings in the window: {state.recent}",
        f"held: {len(state.held)}",
        *(f"  {key}" for key in state.held),
        f"released, waiting for the IdP's retry: {len(state.released)}",
        *(f"  {key}" for key in state.released),
    ]
    if state.open_until is not None:
        lines.append(f"every deprovisioning passes until epoch {state.open_until:.0f}")
    return "\n".join(lines) + "\n"
