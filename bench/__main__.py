"""``python -m bench``: run the benchmark and print the table (exit 1 if any request failed)."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from bench.core import BenchOptions, run_bench
from bench.load import LoadError
from bench.report import format_report
from bench.scenarios import SCENARIO_KEYS
from bench.servers import ServerError


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _scenarios(text: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in SCENARIO_KEYS]
    if unknown or not keys:
        raise argparse.ArgumentTypeError(f"choose from {','.join(SCENARIO_KEYS)}")
    return keys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="The gateway next to a bare aiohttp baseline, on loopback, in one run.",
    )
    p.add_argument(
        "--duration",
        type=_positive,
        default=5,
        help="measured seconds per scenario and target, split into alternating rounds (5)",
    )
    p.add_argument("--connections", "-c", type=_positive, default=16, help="open connections (16)")
    p.add_argument(
        "--threads", "-t", type=_positive, default=1, help="wrk threads (1: one core for wrk)"
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="alternating runs per target and scenario (default: one per second, at most 5)",
    )
    p.add_argument(
        "--warmup", type=int, default=1, help="discarded seconds per scenario and target (1)"
    )
    p.add_argument("--users", type=_positive, default=1000, help="users to seed (1000)")
    p.add_argument(
        "--scenarios",
        type=_scenarios,
        default=SCENARIO_KEYS,
        help=f"comma-separated subset of {','.join(SCENARIO_KEYS)}",
    )
    p.add_argument(
        "--loader",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk if installed (auto), or force one",
    )
    p.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin servers and load generator to separate cores",
    )
    return p


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM into an exception so run_bench's clean-up stops the servers.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = BenchOptions(
        duration=args.duration,
        connections=args.connections,
        threads=args.threads,
        rounds=max(0, args.rounds),
        warmup=max(0, args.warmup),
        users=args.users,
        scenarios=args.scenarios,
        loader=args.loader,
        pin=args.pin,
    )
    signal.signal(signal.SIGTERM, _terminate)
    try:
        report = run_bench(options)
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130
    except (ServerError, LoadError, RuntimeError) as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 2
    print(format_report(report), flush=True)
    return 1 if report.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
