"""The SQL adapter passes the adapter contract on the payroll schema, in both modes and on
MariaDB.

The records are payroll rows (``logon_name``, ``first_nm``, ...). The modified
stamp (``upd_ts``) is left alone here, as a still clock: "an update changes only
the given keys" is about the fields the gateway writes; tests/sql/test_adapter.py
checks that writes move the stamp.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.sql import SqlAdapter
from gateway.testing import AdapterContract

from .conftest import Payroll, open_adapter


class PayrollRows:
    user_name_field = "logon_name"

    def user_data(self, n: int) -> dict[str, Any]:
        return {
            "logon_name": f"contract.user{n}@example.com",
            "first_nm": f"Given{n}",
            "last_nm": f"Family{n}",
            "emp_status": "A",
        }

    group_name_field = "unit_nm"

    def group_data(self, n: int) -> dict[str, Any]:
        return {"unit_nm": f"Contract Group {n}"}


class TestSqlAdapterInTableMode(PayrollRows, AdapterContract):
    @pytest.fixture
    async def adapter(self, payroll: Payroll) -> AsyncIterator[SqlAdapter]:
        settings = payroll.settings("table")
        for section in ("users", "groups"):
            settings[section]["touch_modified"] = False
        adapter = await open_adapter(settings)
        yield adapter
        await adapter.aclose()


class TestSqlAdapterOnMariaDB(PayrollRows, AdapterContract):
    """The MariaDB flavour of payroll (deploy/sql/payroll-mariadb.sql), table mode."""

    @pytest.fixture(params=["mariadb"])
    async def adapter(self, payroll: Payroll) -> AsyncIterator[SqlAdapter]:
        assert payroll.mariadb
        settings = payroll.settings("table")
        for section in ("users", "groups"):
            settings[section]["touch_modified"] = False
        adapter = await open_adapter(settings)
        yield adapter
        await adapter.aclose()


class TestSqlAdapterInStatementMode(PayrollRows, AdapterContract):
    @pytest.fixture
    async def adapter(self, payroll: Payroll) -> AsyncIterator[SqlAdapter]:
        settings = payroll.settings("statements")
        for section in ("users", "groups"):
            update = settings[section]["update"]
            settings[section]["update"] = update.replace(", upd_ts = now()", "")
        adapter = await open_adapter(settings)
        yield adapter
        await adapter.aclose()
