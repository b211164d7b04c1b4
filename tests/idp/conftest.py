"""Fixtures of the IdP-rule suite; the helpers themselves live in ``idp.helpers``."""

from __future__ import annotations

from typing import Any

import pytest
from idp.helpers import Scim, Wire


@pytest.fixture
def scim(anon: Any) -> Scim:
    """Requests against app ``crm`` sent with exactly the headers a test gives."""
    return Scim(anon)


@pytest.fixture
def wire(anon: Any) -> Wire:
    """Raw HTTP/1.1 to the test server, for requests aiohttp's client cannot send."""
    return Wire(anon.server.host, anon.server.port)
