"""The bench package lives at the repository root, which pytest does not put on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "bench: starts real servers and a load generator (about 15 s); "
        "runs in the normal suite, deselect with -m 'not bench'",
    )
