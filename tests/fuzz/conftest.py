"""Hypothesis settings for the fuzz tests: modest example counts, no deadline, no database.

``HYPOTHESIS_PROFILE=thorough`` runs fifteen times as many examples (locally, when hunting).
Examples are bounded in time by ``asyncio.timeout`` in the tests themselves, not by
Hypothesis' deadline, which would flake on a loaded machine.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "database": None,  # nothing written to .hypothesis/
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}
settings.register_profile("default", max_examples=100, **_COMMON)
settings.register_profile("thorough", max_examples=1500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
