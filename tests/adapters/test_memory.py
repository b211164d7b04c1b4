from collections.abc import AsyncIterator

import pytest

from adapters.memory import MemoryAdapter
from gateway.testing import AdapterContract


class TestMemoryAdapter(AdapterContract):
    @pytest.fixture
    async def adapter(self) -> AsyncIterator[MemoryAdapter]:
        adapter = MemoryAdapter(app="test")
        await adapter.open()
        yield adapter
        await adapter.aclose()
