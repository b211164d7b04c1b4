"""`scim-gateway new-adapter`: the template package passes the contract suite as written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main


def test_a_scaffolded_adapter_passes_the_contract_suite_out_of_the_box(tmp_path: Path) -> None:
    assert main(["new-adapter", "my_crm", "--dir", str(tmp_path)]) == 0
    root = tmp_path / "my_crm"
    assert (root / "my_crm" / "__init__.py").is_file()
    assert 'my_crm = "my_crm:MyCrmAdapter"' in (root / "pyproject.toml").read_text("utf-8")
    # Not installed: its own pytest settings put the folder on sys.path.
    done = _pytest(root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout and "failed" not in done.stdout
    # The group-name rules (unique_group_names) are among them, and hold.
    assert "2 passed" in _pytest(root, "-k", "taken_group_name or group_to_a_taken").stdout


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_scaffolded_adapter_is_importable_and_declares_its_settings(tmp_path: Path) -> None:
    main(["new-adapter", "ticketing", "--dir", str(tmp_path)])
    sys.path.insert(0, str(tmp_path / "ticketing"))
    try:
        import ticketing  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path / "ticketing"))
        sys.modules.pop("ticketing", None)
    adapter = ticketing.TicketingAdapter(None, app="t")
    assert adapter.capabilities.can_filter("User", "username", "eq")
    assert ticketing.TicketingAdapter.settings_model is ticketing.TicketingAdapterSettings


@pytest.mark.parametrize("name", ["My-CRM", "1crm", "crm/../x", ""])
def test_a_name_that_cannot_be_a_package_is_refused(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new-adapter", name, "--dir", str(tmp_path)]) == 2
    assert "not a usable adapter name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "crm").mkdir()
    assert main(["new-adapter", "crm", "--dir", str(tmp_path)]) == 2
    assert "exists already" in capsys.readouterr().err
