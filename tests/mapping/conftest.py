"""Fixtures for mapping tests: the shipped Acme HR mapping, and mapping directories in tmp."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.mapping.engine import MAPPINGS_DIR, MappingError, TemplateMapping, load_mapping

ACME = MAPPINGS_DIR / "acme-hr"


@pytest.fixture(scope="session")
def acme() -> TemplateMapping:
    return load_mapping(ACME)


WriteMapping = Callable[..., Path]


@pytest.fixture
def write_mapping(tmp_path: Path) -> WriteMapping:
    """Write ``user.yaml``/``group.yaml`` texts into a fresh directory and return it."""

    def write(user: str | None = None, group: str | None = None, name: str = "app") -> Path:
        directory = tmp_path / name
        directory.mkdir()
        if user is not None:
            (directory / "user.yaml").write_text(user)
        if group is not None:
            (directory / "group.yaml").write_text(group)
        return directory

    return write


LoadErrors = Callable[..., str]


@pytest.fixture
def load_errors(write_mapping: WriteMapping) -> LoadErrors:
    """The MappingError message loading these files gives (fails if they load)."""

    def load(user: str | None = None, group: str | None = None) -> str:
        with pytest.raises(MappingError) as err:
            load_mapping(write_mapping(user, group))
        return str(err.value)

    return load


@pytest.fixture
def load_user(write_mapping: WriteMapping) -> Callable[[str], TemplateMapping]:
    def load(user: str) -> TemplateMapping:
        return load_mapping(write_mapping(user))

    return load
