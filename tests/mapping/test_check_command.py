"""`scim-gateway check` and `serve` load every app's mapping and report its errors (exit 2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.app import build_runtimes
from gateway.cli import main
from gateway.config import ConfigError, load_settings
from gateway.mapping.engine import MAPPINGS_DIR, MappingError, resolve_mapping_dir

BROKEN_USER = """\
to_legacy:
  login: "{{ usrName }}"
  mail: "{{ emails | primry }}"
from_legacy:
  userName: "{{ record.login }}"
  emails: "{{ record.mail | multi }}"
"""

GOOD_USER = """\
to_legacy:
  login: "{{ userName }}"
from_legacy:
  userName: "{{ record.login }}"
"""


def app(**overrides: Any) -> dict[str, Any]:
    return {
        "adapter": "memory",
        "auth": {"tokens": [{"name": "idp", "secret": "s3cret-value"}]},
        **overrides,
    }


def write_config(directory: Path, apps: dict[str, Any]) -> Path:
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump({"apps": apps}))
    return path


def write_user(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True)
    (directory / "user.yaml").write_text(text)
    return directory


def test_check_exits_2_and_prints_every_mapping_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = write_user(tmp_path / "maps" / "crm", BROKEN_USER)
    config = write_config(tmp_path, {"crm": app(mapping="maps/crm")})
    assert main(["check", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    prefix = f"{config}: apps.crm.mapping: {mapping / 'user.yaml'}"
    assert f"{prefix}:2: to_legacy.login: 'usrName' is undefined; did you mean 'userName'?" in err
    assert f"{prefix}:3: to_legacy.mail: unknown filter 'primry'; did you mean 'primary'?" in err


def test_serve_refuses_to_start_with_a_broken_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_user(tmp_path / "crm", BROKEN_USER)
    config = write_config(tmp_path, {"crm": app(mapping="crm")})
    assert main(["serve", "--config", str(config)]) == 2
    assert "apps.crm.mapping:" in capsys.readouterr().err


def test_check_accepts_the_shipped_acme_mapping(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"acme": app(mapping="acme-hr")})
    assert main(["check", "--config", str(config)]) == 0
    assert "OK (1 app(s): acme)" in capsys.readouterr().out


def test_a_missing_mapping_directory_is_a_config_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, {"crm": app(mapping="nowhere")})
    assert main(["check", "--config", str(config)]) == 2
    assert "apps.crm.mapping: no mapping directory 'nowhere'" in capsys.readouterr().err


def test_the_errors_of_every_app_are_reported_together(tmp_path: Path) -> None:
    write_user(tmp_path / "a", BROKEN_USER)
    write_user(tmp_path / "b", BROKEN_USER)
    config = write_config(
        tmp_path, {"a": app(mapping="a"), "b": app(mapping="b"), "c": app(adapter="nope")}
    )
    with pytest.raises(ConfigError) as err:
        build_runtimes(load_settings(config), source=str(config))
    message = str(err.value)
    assert "apps.a.mapping:" in message and "apps.b.mapping:" in message
    assert "apps.c.adapter: unknown adapter 'nope'" in message


def test_the_app_gets_the_loaded_mapping(tmp_path: Path) -> None:
    write_user(tmp_path / "crm", GOOD_USER)
    config = write_config(tmp_path, {"crm": app(mapping="crm")})
    runtimes = build_runtimes(load_settings(config), source=str(config))
    service = runtimes["crm"].service
    assert service.mapping.legacy_field("User", "username") is None
    assert set(service.types) == {"User"}
    assert set(service.types["User"].schema.attributes) == {"username", "groups"}


def test_a_mapping_next_to_the_config_comes_before_the_shipped_one(tmp_path: Path) -> None:
    local = write_user(tmp_path / "acme-hr", GOOD_USER)
    assert resolve_mapping_dir("acme-hr", tmp_path) == local
    assert resolve_mapping_dir("acme-hr", tmp_path / "elsewhere") == MAPPINGS_DIR / "acme-hr"
    assert resolve_mapping_dir("acme-hr") == MAPPINGS_DIR / "acme-hr"


def test_a_path_from_the_repository_root_is_found_too(tmp_path: Path) -> None:
    assert resolve_mapping_dir("mappings/acme-hr", tmp_path) == MAPPINGS_DIR / "acme-hr"


def test_an_absolute_path_is_taken_as_is(tmp_path: Path) -> None:
    assert resolve_mapping_dir(str(tmp_path / "x")) == tmp_path / "x"


def test_an_unknown_relative_path_lists_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as err:
        resolve_mapping_dir("nope", tmp_path)
    assert str(tmp_path / "nope") in str(err.value)
    assert str(MAPPINGS_DIR / "nope") in str(err.value)
