"""scim-sanity's live probe (strict mode) against a live gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import LiveGateway

pytestmark = pytest.mark.conformance


def test_scim_sanity_probe_reports_no_failure(live_gateway: LiveGateway) -> None:
    cli = Path(sys.executable).with_name("scim-sanity")
    proc = subprocess.run(
        [
            str(cli),
            "probe",
            live_gateway.base_url,
            "--token",
            live_gateway.token,
            "--i-accept-side-effects",
            "--json-output",
            "--strict",
            "--timeout",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(proc.stdout)
    summary = report["summary"]
    print(f"scim-sanity: {summary}")
    failed = [r for r in report.get("results", []) if r.get("status") in ("FAIL", "ERROR")]
    assert summary["failed"] == 0 and summary["errors"] == 0, json.dumps(failed, indent=1)
    assert summary["passed"] >= 25
