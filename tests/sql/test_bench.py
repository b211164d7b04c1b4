"""``python -m bench sql``, small: both targets measured, every answer right, the plans indexed."""

from __future__ import annotations

import pytest

from bench.sql import SqlOptions, format_sql_report, run_sql_bench


@pytest.mark.bench
def test_the_sql_bench_times_the_gateway_next_to_asyncpg_and_finds_no_problem(
    pg_dsn: str,
) -> None:
    options = SqlOptions(dsn=pg_dsn, users=5000, duration=1, connections=2, warmup=0, rounds=2)
    report = run_sql_bench(options, log=lambda line: None)
    assert report.problems() == []
    text = format_sql_report(report)
    assert text.count("asyncpg direct") == 2 and text.count("gateway (HTTP)") == 2
    assert "excludedAttr=members" in text and "members read" in text
    assert "Index Scan on emp_master_logon_lower_ix" in text
    assert "Index Scan on emp_master_pkey" in text
    assert all(row.gateway.samples and row.direct.samples for row in report.rows)
