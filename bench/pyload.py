"""The fallback load generator, for machines without wrk: aiohttp client, N connections.

Run as a separate process (``python -m bench.pyload SPEC.json``) so it never
shares an interpreter or a core with a server. It keeps ``connections``
requests in flight on as many keep-alive connections, records every latency,
and prints one ``@@BENCH {json}`` line shaped like the wrk script's.

It is much slower than wrk: one Python process can only drive a few
thousand requests per second, so against a fast server (the baseline) it
measures itself more than the server, and the ratios it yields understate
the gateway's overhead. The bench says so when it uses it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.scenarios import SCIM_JSON, pick_id, render
from bench.stats import exact_percentiles

MARKER = "@@BENCH "


async def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    """Drive ``spec`` (url, method, path, body, status, headers, ids, prefix,
    duration, connections) and return the run's result in the wrk script's shape."""
    connections = int(spec["connections"])
    duration = float(spec["duration"])
    expected = int(spec["status"])
    ids: list[str] = list(spec.get("ids") or ["-"])
    headers = dict(spec.get("headers", {}))
    if spec.get("body") is not None:
        headers["Content-Type"] = SCIM_JSON
    latencies: list[float] = []
    counts = {"unexpected": 0, "bad_status": 0, "bytes": 0}
    errors = dict.fromkeys(("connect", "read", "write", "status", "timeout"), 0)
    timeout = aiohttp.ClientTimeout(total=float(spec.get("timeout", 10.0)))
    connector = aiohttp.TCPConnector(limit=connections)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + duration

        async def worker(tid: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                n += 1
                values = {"prefix": spec["prefix"], "tid": tid, "n": n}
                values["id"] = pick_id(ids, tid, n)
                url = spec["url"] + render(spec["path"], values)
                body = None if spec.get("body") is None else render(spec["body"], values).encode()
                began = time.perf_counter_ns()
                try:
                    async with session.request(
                        spec["method"], url, data=body, headers=headers
                    ) as resp:
                        payload = await resp.read()
                        status = resp.status
                except TimeoutError:
                    errors["timeout"] += 1
                    continue
                except aiohttp.ClientConnectorError:
                    errors["connect"] += 1
                    continue
                except aiohttp.ClientError:
                    errors["read"] += 1
                    continue
                latencies.append((time.perf_counter_ns() - began) / 1000.0)
                counts["bytes"] += len(payload)
                if status != expected:
                    counts["unexpected"] += 1
                    counts["bad_status"] = counts["bad_status"] or status
                if status > 399:
                    errors["status"] += 1

        await asyncio.gather(*(worker(tid) for tid in range(1, connections + 1)))
        elapsed = time.perf_counter() - start

    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "bytes": counts["bytes"],
        "unexpected": counts["unexpected"],
        "bad_status": counts["bad_status"],
        "errors": errors,
        "min_us": min(latencies, default=0.0),
        "max_us": max(latencies, default=0.0),
        "mean_us": sum(latencies) / len(latencies) if latencies else 0.0,
        "percentiles": exact_percentiles(latencies),
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m bench.pyload SPEC.json", file=sys.stderr)
        raise SystemExit(2)
    spec = json.loads(Path(args[0]).read_text("utf-8"))
    result = asyncio.run(run_load(spec))
    sys.stdout.write("\n" + MARKER + orjson.dumps(result).decode() + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
