"""The LDAP bench end to end, briefly: a real slapd, a real gateway, a few users each way."""

from __future__ import annotations

import pytest

from bench.__main__ import parser
from bench.ldap import LdapOptions, format_ldap_report, run_ldap_bench

pytestmark = pytest.mark.bench


def test_the_ldap_bench_provisions_and_lists_every_user_both_ways() -> None:
    report = run_ldap_bench(LdapOptions(users=120, connections=2), log=lambda line: None)
    assert report.problems() == []
    assert {k: s.count for k, s in report.provision.items()} == {"gateway": 120, "direct": 120}
    assert {k: s.count for k, s in report.listing.items()} == {"gateway": 120, "direct": 120}
    assert report.pages == 2
    text = format_ldap_report(report)
    assert "time ratio" in text and "problems: none" in text


def test_the_ldap_suite_is_on_the_command_line() -> None:
    assert parser().parse_args(["ldap"]).suite == "ldap"
