"""The README's run command: Acme HR and a gateway in front of it, provisioning for real."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

from gateway.demo.run import Demo, instructions, make_demo, serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_demo_command_provisions_into_acme_hr_and_exits_when_asked() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "demo",
            "--port",
            str(free_port()),
            "--legacy-port",
            str(free_port()),
            "--walkthrough",
            "--exit",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "SCIM POST /Users -> 201" in out
    assert "SCIM POST /Groups -> 201" in out
    assert "SCIM PATCH /Users/acc_000001 -> 200" in out
    assert '"status": "suspended"' in out
    assert '"member_ids": ["acc_000001"]' in out
    # The walkthrough ends with its three operations, read back from the audit trail.
    audit = out.split("The audit trail (GET /admin/audit):", 1)[1].splitlines()[1:4]
    assert [line.split()[2:5] for line in audit] == [
        ["demo-idp", "create", "User"],
        ["demo-idp", "create", "Group"],
        ["demo-idp", "patch", "User"],
    ]
    assert all(" success 20" in line for line in audit)
    assert audit[2].endswith("changed: active")


async def test_the_walkthrough_lands_in_acme_hr_as_the_instructions_say(tmp_path: Path) -> None:
    demo = Demo(free_port(), free_port(), "t0ken-for-the-demo", "key-for-acme", str(tmp_path / "a"))
    text = instructions(demo)
    assert demo.scim in text and "X-Api-Key: key-for-acme" in text
    created, team, deactivated = await serve(demo, run_walkthrough=True, exit_after=True)
    assert created["items"][0]["login"] == "bjensen"
    assert created["items"][0]["mail"] == "bjensen@example.com"
    assert team["team"]["name"] == "Tour Guides" and team["team"]["member_ids"] == ["acc_000001"]
    assert deactivated["account"]["status"] == "suspended"


def test_each_run_gets_fresh_credentials_and_a_fresh_database() -> None:
    one, two = make_demo(1, 2, None), make_demo(1, 2, None)
    assert one.token != two.token and one.legacy_key != two.legacy_key and one.db != two.db
    assert one.admin_token != two.admin_token and one.state != two.state
