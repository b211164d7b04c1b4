"""Load generators: wrk with a generated Lua script, or the Python fallback (bench.pyload).

Both run as a child process pinned to the load generator's cores, print one
``@@BENCH {json}`` line, and are killed if they overrun their duration.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.scenarios import Scenario, lua_script
from bench.servers import BASE_PATH, server_env, spawn, stop
from bench.stats import PERCENTILES, RunResult

MARKER = "@@BENCH "


class LoadError(RuntimeError):
    """The load generator failed or printed no result."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send a scenario's requests."""

    name: str  #: "gateway" or "baseline"
    origin: str  #: http://127.0.0.1:PORT
    headers: Mapping[str, str]
    ids: Sequence[str]


class Loader(Protocol):
    name: str
    description: str

    def run(self, scenario: Scenario, target: Target, seconds: int, tag: str) -> RunResult: ...


def parse_result(output: str) -> RunResult:
    for line in reversed(output.splitlines()):
        if line.startswith(MARKER):
            return RunResult.from_json(json.loads(line[len(MARKER) :]))
    raise LoadError("no result line in the load generator's output:\n" + output[-2000:])


def _run_child(cmd: Sequence[str], cpus: Collection[int] | None, limit: float) -> str:
    """Run ``cmd`` to completion (killing it after ``limit`` seconds); its stdout."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = spawn(cmd, cpus=cpus, stdout=out, stderr=err, env=server_env())
        try:
            proc.wait(limit)
        except subprocess.TimeoutExpired:
            raise LoadError(f"{cmd[0]} did not finish within {limit:.0f} s") from None
        finally:
            stop(proc, grace=1.0)  # a no-op once it has exited; kills it on overrun or Ctrl-C
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    if proc.returncode != 0:
        raise LoadError(f"{cmd[0]} exited with status {proc.returncode}:\n{stderr}{stdout}")
    return stdout


def _tag(target: Target, tag: str) -> str:
    # Unique per run, so POSTed userNames never repeat across runs.
    return f"{target.name[0]}{tag}{secrets.token_hex(3)}"


@dataclass
class WrkLoader:
    wrk: str
    threads: int
    connections: int
    cpus: Collection[int] | None
    workdir: Path
    name: str = "wrk"
    description: str = field(default="")

    def __post_init__(self) -> None:
        self.description = (
            f"{self.version()} -t{self.threads} -c{self.connections}, Lua script per scenario"
        )

    def version(self) -> str:
        proc = subprocess.run([self.wrk, "-v"], capture_output=True, text=True, check=False)
        match = re.search(r"wrk\s+(\S+)", proc.stdout + proc.stderr)
        return f"wrk {match.group(1)}" if match else "wrk"

    def run(self, scenario: Scenario, target: Target, seconds: int, tag: str) -> RunResult:
        script = lua_script(
            scenario,
            base_path=BASE_PATH,
            headers={"Host": target.origin.removeprefix("http://"), **target.headers},
            ids=target.ids,
            prefix=_tag(target, tag),
            percentiles=PERCENTILES,
        )
        path = self.workdir / f"{scenario.key}-{target.name}.lua"
        path.write_text(script, "utf-8")
        cmd = [
            self.wrk,
            f"-t{self.threads}",
            f"-c{self.connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(path),
            target.origin + "/",
        ]
        return parse_result(_run_child(cmd, self.cpus, seconds + 30))


@dataclass
class PythonLoader:
    connections: int
    cpus: Collection[int] | None
    workdir: Path
    name: str = "python"
    description: str = field(default="")

    def __post_init__(self) -> None:
        self.description = (
            f"Python fallback (bench.pyload: aiohttp client, one process, "
            f"{self.connections} connections)"
        )

    def run(self, scenario: Scenario, target: Target, seconds: int, tag: str) -> RunResult:
        spec = {
            "url": target.origin + BASE_PATH,
            "method": scenario.method,
            "path": scenario.path,
            "body": scenario.body,
            "status": scenario.status,
            "headers": dict(target.headers),
            "ids": list(target.ids),
            "prefix": _tag(target, tag),
            "duration": seconds,
            "connections": self.connections,
        }
        path = self.workdir / f"{scenario.key}-{target.name}.json"
        path.write_text(json.dumps(spec), "utf-8")
        cmd = [sys.executable, "-m", "bench.pyload", str(path)]
        return parse_result(_run_child(cmd, self.cpus, seconds + 30))


def find_wrk() -> str | None:
    return shutil.which("wrk")
