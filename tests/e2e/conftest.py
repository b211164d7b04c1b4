"""End-to-end fixtures: ``redmine``, a real Redmine on loopback (see ``e2e.redmine``)."""

from __future__ import annotations

from e2e.redmine import redmine

__all__ = ["redmine"]
