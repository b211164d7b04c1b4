"""Every numbered rule of IDP-RULES.md keeps at least one test in this suite.

Each test in ``tests/idp/test_*.py`` names the rules it checks in its
docstring (``Rule 6: ...`` or ``Rules 1, 4, 19: ...``). This test reads the
modules' source, collects those numbers and fails when a rule has none, so a
rule cannot silently lose its test.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).parent
RULES = range(1, 24)  # "Rules for the gateway" 1..23 in IDP-RULES.md
IDP_MODULES = ("test_entra", "test_okta", "test_onelogin", "test_jumpcloud", "test_ping")
_MENTION = re.compile(r"\bRules?\s+(\d+(?:\s*(?:,|and)\s*\d+)*)")


def rules_named(docstring: str) -> set[int]:
    found: set[int] = set()
    for match in _MENTION.finditer(docstring):
        found.update(int(n) for n in re.findall(r"\d+", match.group(1)))
    return found


def collect() -> dict[str, set[int]]:
    """`module::test` -> the rule numbers its docstring names."""
    tests: dict[str, set[int]] = {}
    for path in sorted(HERE.glob("test_*.py")):
        if path.name == Path(__file__).name:
            continue
        tree = ast.parse(path.read_text("utf-8"), filename=str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
                "test_"
            ):
                tests[f"{path.stem}::{node.name}"] = rules_named(ast.get_docstring(node) or "")
    return tests


def test_the_docstring_parser_reads_single_and_listed_rules() -> None:
    assert rules_named("Rule 6: removes only those") == {6}
    assert rules_named("Rules 1, 4, 19: capitalised ops") == {1, 4, 19}
    assert rules_named("Rules 2 and 13: unquoted") == {2, 13}
    assert rules_named("no rule here") == set()


def test_every_idp_module_is_present_and_holds_tests() -> None:
    modules = {name.split("::")[0] for name in collect()}
    assert set(IDP_MODULES) <= modules


def test_every_test_names_the_rules_it_checks() -> None:
    unnamed = [name for name, rules in collect().items() if not rules]
    assert unnamed == []
    unknown = {name: rules - set(RULES) for name, rules in collect().items() if rules - set(RULES)}
    assert unknown == {}


def test_every_rule_from_1_to_23_has_a_test() -> None:
    covered: set[int] = set().union(*collect().values())
    missing = sorted(set(RULES) - covered)
    assert missing == [], f"rules without a test in tests/idp: {missing}"
