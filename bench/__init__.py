"""Benchmarks: the gateway next to a bare aiohttp baseline, measured in the same run.

Run::

    ./dev bench                                   # or: .venv/bin/python -m bench
    .venv/bin/python -m bench --duration 3 --connections 16 --threads 2
    .venv/bin/python -m bench --scenarios get,patch --loader python

What happens (everything on 127.0.0.1, every child stopped at the end, on
Ctrl-C and on SIGTERM):

1. ``scim-gateway serve`` starts on a temporary config: one app, ``bench``, on
   the memory adapter, with the SHA-256 digest of a freshly generated bearer
   token. Users are seeded through the SCIM API (``--users``, 1000).
2. Each scenario's request is sent once; the gateway's answers (status,
   ETag/Location, body) become the fixed answers of the baseline
   (:mod:`bench.baseline`), a minimal aiohttp app in its own process with the
   same routes, no middlewares, the bodies orjson-dumped once.
3. Per scenario (GET by id, GET with a ``userName eq`` filter, GET of 100,
   POST with unique userNames, PATCH of displayName), each server gets a
   discarded warm-up run, then alternating measured runs in ABBA order.
   The load generator is wrk with a generated Lua script (:mod:`bench.scenarios`)
   or, without wrk, :mod:`bench.pyload` (much slower; the output says so).
4. The table: req/s, pooled p50/p99 and their ratios. Any response with an
   unexpected status, or any socket error, is printed under a banner and
   makes the exit status 1.

CPU placement, for the 2-core machines this runs on: both servers are single
processes (one event loop each, as ``scim-gateway serve`` runs) pinned to the
last core, and only one of them is under load at a time; the load generator
(wrk ``-t1`` by default) is pinned to the other core(s), so it never steals
the server's core. ``--no-pin`` turns this off. Read the ratios, not the
absolute numbers: they are what survives a noisy machine.

:func:`run_bench` is the core; :func:`format_report` renders its result.

A second suite, ``python -m bench rest`` (:mod:`bench.rest`), puts the gateway
on the REST adapter in front of Acme HR (the demo legacy app) next to
:mod:`bench.proxy`, a hand-written aiohttp proxy doing the same translation,
after checking that both answer alike; :func:`run_rest_bench` and
:func:`format_rest_report`. ``python -m bench all`` runs both suites.
"""

from __future__ import annotations

from bench.core import BenchOptions, BenchReport, Row, run_bench
from bench.report import format_report, format_rest_report, format_table
from bench.rest import REST_SCENARIO_KEYS, RestOptions, RestReport, run_rest_bench
from bench.scenarios import SCENARIO_KEYS

__all__ = [
    "REST_SCENARIO_KEYS",
    "SCENARIO_KEYS",
    "BenchOptions",
    "BenchReport",
    "RestOptions",
    "RestReport",
    "Row",
    "format_report",
    "format_rest_report",
    "format_table",
    "run_bench",
    "run_rest_bench",
]
