"""Config loading: errors name the file and key; secret references resolve and stay secret."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.config import ConfigError, load_settings


def write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def app(**overrides: object) -> dict[str, object]:
    return {
        "adapter": "memory",
        "auth": {"tokens": [{"name": "idp", "secret": "s3cret-value"}]},
        **overrides,
    }


def test_a_bad_digest_is_reported_with_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"apps": {"crm": app(auth={"tokens": [{"name": "x", "sha256": "zz"}]})}})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert f"{path}: apps.crm.auth.tokens.0.sha256:" in str(err.value)


def test_an_unknown_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, {"apps": {"crm": app(adaptor="memory")}})
    with pytest.raises(ConfigError, match=r"apps\.crm\.adaptor: Extra inputs are not permitted"):
        load_settings(path)


def test_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("apps: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: not valid YAML"):
        load_settings(path)


def test_env_and_file_secret_references_resolve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_TOKEN", "from-env")
    secret_file = tmp_path / "token"
    secret_file.write_text("from-file\n")
    tokens = [
        {"name": "a", "secret": "${env:CRM_TOKEN}"},
        {"name": "b", "secret": f"${{file:{secret_file}}}"},
    ]
    settings = load_settings(write(tmp_path, {"apps": {"crm": app(auth={"tokens": tokens})}}))
    creds = settings.apps["crm"].auth.tokens
    assert creds[0].digest() == hashlib.sha256(b"from-env").digest()
    assert creds[1].digest() == hashlib.sha256(b"from-file").digest()
    assert "from-env" not in repr(settings) and "from-file" not in repr(settings)


def test_a_missing_env_reference_is_an_error_naming_the_key(tmp_path: Path) -> None:
    tokens = [{"name": "a", "secret": "${env:SURELY_NOT_SET_ANYWHERE}"}]
    path = write(tmp_path, {"apps": {"crm": app(auth={"tokens": tokens})}})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert "apps.crm.auth.tokens.0.secret" in str(err.value)
    assert "SURELY_NOT_SET_ANYWHERE is not set" in str(err.value)


def test_check_accepts_a_good_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, {"apps": {"crm": app()}})
    assert main(["check", "--config", str(path)]) == 0
    assert "OK (1 app(s): crm)" in capsys.readouterr().out


def test_check_reports_an_unknown_adapter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"apps": {"crm": app(adapter="nosuch")}})
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: apps.crm.adapter: unknown adapter 'nosuch'" in err
    assert "memory" in err


def test_check_reports_bad_adapter_settings_by_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"apps": {"crm": app(settings={"max_resources": 0})}})
    assert main(["check", "--config", str(path)]) == 2
    assert "apps.crm.settings.max_resources:" in capsys.readouterr().err


def test_token_new_prints_a_digest_that_matches_the_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["token", "new", "--name", "okta"]) == 0
    out = capsys.readouterr().out
    token = out.split("IdP): ", 1)[1].split()[0]
    digest = out.split("sha256: ", 1)[1].split()[0]
    assert hashlib.sha256(token.encode()).hexdigest() == digest
    assert len(token) >= 40


def test_a_key_typo_says_which_key_was_meant(tmp_path: Path) -> None:
    path = write(tmp_path, {"apps": {"crm": app(adaptor="memory", breaker={"failurs": 3})}})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    lines = str(err.value).splitlines()
    assert f"{path}: apps.crm.adaptor: Extra inputs are not permitted; did you mean 'adapter'?" in (
        lines
    )
    assert any(
        line.endswith("breaker.failurs: Extra inputs are not permitted; did you mean 'failures'?")
        for line in lines
    )


def test_a_top_level_typo_and_an_adapter_settings_typo_say_what_was_meant(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, {"servr": {}, "apps": {"crm": app()}})
    with pytest.raises(ConfigError, match=r"servr: .*; did you mean 'server'\?"):
        load_settings(path)
    rest = {"base_url": "http://127.0.0.1:1", "timeot": {"total": 3}}
    path = write(tmp_path, {"apps": {"crm": app(adapter="rest", settings=rest)}})
    assert main(["check", "--config", str(path)]) == 2
    assert "apps.crm.settings.timeot: Extra inputs are not permitted; did you mean 'timeout'?" in (
        capsys.readouterr().err
    )


def test_our_validators_messages_lose_pydantics_value_error_prefix(tmp_path: Path) -> None:
    path = write(tmp_path, {"apps": {"crm": app(auth={"tokens": [{"name": "x", "sha256": "zz"}]})}})
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == (
        f"{path}: apps.crm.auth.tokens.0.sha256: must be a hex SHA-256 digest (64 characters)"
    )


def test_adapter_settings_can_come_from_a_file_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "packs").mkdir()
    (tmp_path / "packs" / "memory.yaml").write_text("max_resources: 7\n")
    path = write(tmp_path, {"apps": {"crm": app(settings={"file": "packs/memory.yaml"})}})
    assert load_settings(path).apps["crm"].settings == {"max_resources": 7}
    over = app(settings={"file": "packs/memory.yaml", "max_resources": 9})
    path = write(tmp_path, {"apps": {"crm": over}})
    assert load_settings(path).apps["crm"].settings == {"max_resources": 9}


def test_a_shipped_mapping_pack_is_used_as_shipped(tmp_path: Path) -> None:
    from gateway.mapping.engine import MAPPINGS_DIR

    rest = app(adapter="rest", mapping="acme-hr", settings={"file": "acme-hr/rest.yaml"})
    settings = load_settings(write(tmp_path, {"apps": {"acme": rest}}))
    shipped = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    assert settings.apps["acme"].settings == shipped


def test_a_missing_settings_file_names_the_key(tmp_path: Path) -> None:
    path = write(tmp_path, {"apps": {"crm": app(settings={"file": "nope.yaml"})}})
    with pytest.raises(ConfigError, match=r"apps\.crm\.settings\.file: no such file 'nope.yaml'"):
        load_settings(path)
    (tmp_path / "list.yaml").write_text("- a\n")
    path = write(tmp_path, {"apps": {"crm": app(settings={"file": "list.yaml"})}})
    with pytest.raises(ConfigError, match=r"settings\.file: .*list.yaml must hold a mapping"):
        load_settings(path)


def test_event_loop_uvloop_needs_uvloop_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = {"server": {"event_loop": "uvloop"}, "apps": {"crm": app()}}
    pytest.importorskip("uvloop")
    assert load_settings(write(tmp_path, data)).server.event_loop == "uvloop"
    real_find_spec = importlib.util.find_spec

    def without_uvloop(name: str, *args: object) -> object:
        return None if name == "uvloop" else real_find_spec(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_uvloop)
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, data))
    assert "server.event_loop: " in str(err.value)
    assert "pip install 'scim-gateway[uvloop]'" in str(err.value)
    assert load_settings(write(tmp_path, {"apps": {"crm": app()}})).server.event_loop == "asyncio"
