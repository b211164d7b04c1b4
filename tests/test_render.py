"""``scim-gateway render``: the legacy calls a SCIM request would make, printed, never sent."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from rest_support import API_KEY, closed_port
from support import TOKEN, digest

from gateway.cli import main
from gateway.mapping.engine import MAPPINGS_DIR

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Acme HR at a port nothing listens on: a render that sent anything would fail."""
    monkeypatch.setenv("ACME_HR_URL", f"http://127.0.0.1:{closed_port()}/api/v1")
    monkeypatch.setenv("ACME_HR_API_KEY", API_KEY)
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    auth = {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]}
    raw = {
        "apps": {
            "acme": {"adapter": "rest", "mapping": "acme-hr", "settings": rest, "auth": auth},
            "mem": {"adapter": "memory", "auth": auth},
        }
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), "utf-8")
    return path


def _file(tmp_path: Path, name: str, data: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data), "utf-8")
    return str(path)


def _render(config: Path, *args: str) -> int:
    return main(["render", "--config", str(config), *args])


def test_a_post_prints_the_create_call_with_the_key_masked(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {
        "schemas": [USER],
        "userName": "bjensen",
        "name": {"givenName": "Barbara"},
        "active": True,
    }
    code = _render(
        config, "--app", "acme", "--method", "POST", "--path", "/Users",
        "--body", _file(tmp_path, "user.json", body),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    head, _, payload = out.partition("\n\n")
    lines = head.splitlines()
    assert lines[0] == "# call 1 of 1"
    assert lines[1].startswith("POST http://127.0.0.1:") and lines[1].endswith("/api/v1/accounts")
    assert "X-Api-Key: ****" in lines
    assert json.loads(payload) == {
        "account": {"login": "bjensen", "given": "Barbara", "status": "enabled"}
    }
    assert API_KEY not in out


def test_a_patch_prints_only_the_change(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = {"schemas": [USER], "id": "acc_000001", "userName": "bjensen", "active": True}
    patch = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]}
    code = _render(
        config, "--app", "acme", "--method", "PATCH", "--path", "/Users/acc_000001",
        "--body", _file(tmp_path, "patch.json", patch),
        "--current", _file(tmp_path, "current.json", current),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "PATCH http://" in out and out.split("\n")[1].endswith("/accounts/acc_000001")
    assert json.loads(out.partition("\n\n")[2]) == {"account": {"status": "suspended"}}


def test_a_body_may_come_from_stdin(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps({"displayName": "Eng"})))
    code = _render(config, "--app", "acme", "--method", "POST", "--path", "/Groups", "--body", "-")
    assert code == 0
    assert json.loads(capsys.readouterr().out.partition("\n\n")[2]) == {"team": {"name": "Eng"}}


def test_a_delete_prints_the_delete_call(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _render(config, "--app", "acme", "--method", "DELETE", "--path", "/Users/a%2F..")
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines()[1].startswith("DELETE ")
    assert out.splitlines()[1].endswith("/api/v1/accounts/a%2F..")  # one segment, as sent


def test_a_path_holds_one_id(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _render(config, "--app", "acme", "--method", "DELETE", "--path", "/Users/a/b")
    assert code == 2
    assert "/{type}/{id}" in capsys.readouterr().err


def test_an_unchanged_resource_needs_no_call(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = {"schemas": [USER], "userName": "bjensen"}
    code = _render(
        config, "--app", "acme", "--method", "PUT", "--path", "/Users/acc_000001",
        "--body", _file(tmp_path, "same.json", current),
        "--current", _file(tmp_path, "current.json", current),
    )  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out == "no call: the request changes nothing in the legacy app\n"


def test_put_without_the_current_resource_is_refused(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _render(
        config, "--app", "acme", "--method", "PUT", "--path", "/Users/acc_000001",
        "--body", _file(tmp_path, "user.json", {"userName": "x"}),
    )  # fmt: skip
    assert code == 2
    assert "--current" in capsys.readouterr().err


def test_an_adapter_without_a_dry_run_says_so(
    config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _render(
        config, "--app", "mem", "--method", "POST", "--path", "/Users",
        "--body", _file(tmp_path, "user.json", {"userName": "x"}),
    )  # fmt: skip
    assert code == 2
    assert "the app's adapter (memory) has no dry run" in capsys.readouterr().err


def test_an_unknown_app_is_named(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _render(config, "--app", "nope", "--method", "DELETE", "--path", "/Users/1")
    assert code == 2
    assert "no app 'nope'" in capsys.readouterr().err


@pytest.fixture
def redmine_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped Redmine mapping, whose to_legacy writes the password."""
    monkeypatch.setenv("REDMINE_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("REDMINE_API_KEY", API_KEY)
    monkeypatch.setenv("REDMINE_USER_EXTERNAL_ID_FIELD", "1")
    monkeypatch.setenv("REDMINE_GROUP_EXTERNAL_ID_FIELD", "2")
    rest = yaml.safe_load((MAPPINGS_DIR / "redmine" / "rest.yaml").read_text("utf-8"))
    auth = {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]}
    raw = {
        "apps": {"rm": {"adapter": "rest", "mapping": "redmine", "settings": rest, "auth": auth}}
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(raw), "utf-8")
    return path


def test_a_password_is_shown_masked_in_a_post_a_put_and_a_patch(
    redmine_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "Sup3r-Secret-Passw0rd"
    user = {
        "schemas": [USER],
        "userName": "bjensen",
        "emails": [{"value": "b@example.com", "type": "work", "primary": True}],
    }
    current = _file(tmp_path, "current.json", {**user, "id": "7", "active": True})
    bodies = {
        "POST": {**user, "PassWord": secret},
        "PUT": {**user, "password": secret},
        "PATCH": {
            "schemas": [PATCH],
            "operations": [
                {"op": "replace", "value": {"password": secret}},
                {"op": "replace", "Path": "password", "Value": secret},
            ],
        },
    }
    for method, body in bodies.items():
        path = "/Users" if method == "POST" else "/Users/7"
        args = ["--app", "rm", "--method", method, "--path", path]
        args += ["--body", _file(tmp_path, f"{method}.json", body), "--current", current]
        assert _render(redmine_config, *args) == 0, capsys.readouterr().err
        out = capsys.readouterr().out
        assert secret not in out, method
        assert json.loads(out.partition("\n\n")[2])["user"]["password"] == "****", method
