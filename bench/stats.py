"""Results of load-generator runs, and how alternating runs of one target are pooled.

Each run reports its latency distribution as a grid of percentiles
(:data:`PERCENTILES`). Runs are pooled by treating the step between two grid
points as carrying that share of the run's requests at the upper point's
latency, and taking quantiles of the mixture, weighted by request count. For
a single run the grid holds p50 and p99 exactly, so nothing is approximated;
for several runs the error is at most one grid step (0.5 percentile points
around the median, 0.1 around p99).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The percentiles every run reports (wrk's ``latency:percentile`` or the Python loader).
PERCENTILES: tuple[float, ...] = (
    *(i / 2 for i in range(1, 198)),  # 0.5 .. 98.5 in steps of 0.5
    99.0,
    99.1,
    99.2,
    99.3,
    99.4,
    99.5,
    99.6,
    99.7,
    99.8,
    99.9,
    99.95,
    99.99,
    100.0,
)

ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass(frozen=True, slots=True)
class RunResult:
    """One load-generator run against one target."""

    requests: int
    duration_s: float
    unexpected: int  #: responses whose status was not the scenario's expected 2xx
    bad_status: int  #: the first such status, 0 if none
    errors: Mapping[str, int]  #: socket errors and timeouts (wrk's error counters)
    percentiles: Sequence[tuple[float, float]]  #: (percentile, latency in microseconds)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunResult:
        errors = {k: int(data.get("errors", {}).get(k, 0)) for k in ERROR_KINDS}
        return cls(
            requests=int(data["requests"]),
            duration_s=float(data["duration_us"]) / 1e6,
            unexpected=int(data["unexpected"]),
            bad_status=int(data.get("bad_status", 0)),
            errors=errors,
            percentiles=[(float(p), float(v)) for p, v in data["percentiles"]],
        )


@dataclass(slots=True)
class Pooled:
    """All measured runs of one scenario against one target."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)

    @property
    def duration_s(self) -> float:
        return sum(r.duration_s for r in self.runs)

    @property
    def rps(self) -> float:
        d = self.duration_s
        return self.requests / d if d > 0 else 0.0

    @property
    def unexpected(self) -> int:
        return sum(r.unexpected for r in self.runs)

    @property
    def bad_status(self) -> int:
        return next((r.bad_status for r in self.runs if r.bad_status), 0)

    @property
    def socket_errors(self) -> int:
        return sum(r.socket_errors for r in self.runs)

    def errors(self) -> dict[str, int]:
        return {k: sum(r.errors.get(k, 0) for r in self.runs) for k in ERROR_KINDS}

    def percentile(self, p: float) -> float:
        """Latency in microseconds at percentile ``p`` of all runs pooled."""
        return pooled_percentile(self.runs, p)


def pooled_percentile(runs: Sequence[RunResult], p: float) -> float:
    runs = [r for r in runs if r.requests > 0 and r.percentiles]
    if not runs:
        return 0.0
    if len(runs) == 1:
        exact = dict(runs[0].percentiles)
        if p in exact:
            return exact[p]
    mass: list[tuple[float, float]] = []  # (latency, weight)
    for run in runs:
        previous = 0.0
        for pct, value in run.percentiles:
            mass.append((value, run.requests * (pct - previous) / 100.0))
            previous = pct
    mass.sort()
    total = sum(w for _, w in mass)
    target = total * p / 100.0
    seen = 0.0
    for value, weight in mass:
        seen += weight
        if seen >= target - 1e-9 * total:
            return value
    return mass[-1][0]


def exact_percentiles(latencies_us: Sequence[float]) -> list[tuple[float, float]]:
    """The :data:`PERCENTILES` grid of a list of latencies (nearest rank, as wrk computes it)."""
    if not latencies_us:
        return [(p, 0.0) for p in PERCENTILES]
    ordered = sorted(latencies_us)
    count = len(ordered)
    grid = []
    for p in PERCENTILES:
        rank = min(count, max(1, round(p / 100.0 * count + 0.5)))
        grid.append((p, float(ordered[rank - 1])))
    return grid


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0
