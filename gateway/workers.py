"""``serve --workers N``: N gateway processes answering on one port.

The supervisor (the process ``serve`` started as) binds the port first, with
``SO_REUSEPORT`` and without listening on it, so a taken port fails before any
worker starts and the port stays reserved while workers come and go. Each
worker is a fresh ``scim-gateway serve --worker`` process listening on the
same port with ``SO_REUSEPORT``: the kernel spreads new connections over the
workers' sockets by their addresses. (One socket shared by all workers would
let the busiest worker, already awake, accept nearly every connection.)
Workers share nothing in memory: they meet in the state store (audit trail,
guard holds, creates of unknown outcome; each worker holds its own lease), and
in a metrics directory (prometheus-client's multiprocess mode,
``PROMETHEUS_MULTIPROC_DIR``) so ``/metrics`` sums every worker's series.
Circuit breakers and rate limits stay per worker (see the README).

Stopping: SIGTERM or SIGINT to the supervisor is passed to every worker, which
finishes its requests in flight and flushes its audit trail; a worker still
running after ``STOP_GRACE`` seconds is killed. A worker whose supervisor is
gone (killed outright) stops by itself (:func:`exit_with_supervisor`). A worker
that exits on its own is started again, unless workers keep dying
(``MAX_RESTARTS`` within ``RESTART_WINDOW`` seconds), which stops the whole
gateway with exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import FrameType

from aiohttp import web

from gateway.metrics import MULTIPROC_DIR

__all__ = [
    "Supervisor",
    "announce_ready",
    "bind",
    "exit_with_supervisor",
    "settle_gc",
    "worker_count",
]

log = logging.getLogger("gateway.workers")

#: Seconds a worker has to finish its requests and flush its audit after SIGTERM.
STOP_GRACE = 70.0
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0


def worker_count(text: str) -> int:
    """``auto`` (the cores this process may run on) or a positive number."""
    if text == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    count = int(text)
    if count < 1:
        raise ValueError("must be at least 1, or auto")
    return count


def bind(host: str, port: int) -> socket.socket:
    """The port, reserved for the workers: bound with SO_REUSEPORT, never listened on
    (no connection waits on it). Raises OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class Supervisor:
    """Starts, watches and stops the workers of one ``serve``."""

    #: The command line of a worker (``scim-gateway serve --worker ...``).
    command: Sequence[str]
    sock: socket.socket
    count: int
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _stopping: bool = False
    _restarts: list[float] = field(default_factory=list)
    _metrics_dir: str | None = None

    def run(self) -> int:
        """Serve until signalled (0) or until workers keep failing (1)."""
        env = self._environment()
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.workers = [self._start(env) for _ in range(self.count)]
            print(
                f"scim-gateway: {self.count} workers (pids "
                f"{', '.join(str(w.pid) for w in self.workers)}) on one port",
                file=sys.stderr,
                flush=True,
            )
            return self._watch(env)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.sock.close()
            if self._metrics_dir is not None:
                shutil.rmtree(self._metrics_dir, ignore_errors=True)

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if not env.get(MULTIPROC_DIR):
            self._metrics_dir = tempfile.mkdtemp(prefix="scim-gateway-metrics-")
            env[MULTIPROC_DIR] = self._metrics_dir
        return env

    def _start(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        # Each worker in a session of its own: a terminal's Ctrl-C or a signal to the
        # supervisor's group reaches the supervisor alone, which passes on one SIGTERM
        # (a second one would cut short a worker's shut-down and its audit flush).
        return subprocess.Popen(self.command, env=env, start_new_session=True)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _watch(self, env: dict[str, str]) -> int:
        while not self._stopping:
            time.sleep(0.2)
            for index, worker in enumerate(self.workers):
                code = worker.poll()
                if code is None or self._stopping:
                    continue
                self._forget(worker.pid)
                if not self._may_restart():
                    print(
                        f"scim-gateway: worker {worker.pid} exited with status {code}; "
                        f"workers failed {MAX_RESTARTS} times in {RESTART_WINDOW:g} s, stopping",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
                print(
                    f"scim-gateway: worker {worker.pid} exited with status {code}; "
                    "starting another",
                    file=sys.stderr,
                    flush=True,
                )
                self.workers[index] = self._start(env)
        return 0

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW]
        self._restarts.append(now)
        return len(self._restarts) <= MAX_RESTARTS

    def _forget(self, pid: int) -> None:
        """A dead worker's live gauges (requests in flight) leave /metrics."""
        if self._metrics_dir is None and not os.environ.get(MULTIPROC_DIR):
            return
        from prometheus_client import multiprocess

        with contextlib.suppress(OSError):
            where = self._metrics_dir or os.environ[MULTIPROC_DIR]
            multiprocess.mark_process_dead(pid, where)  # type: ignore[no-untyped-call]

    def _stop_all(self) -> None:
        running = [w for w in self.workers if w.poll() is None]
        for worker in running:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for worker in running:
            try:
                worker.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            self._forget(worker.pid)


#: New container objects between young collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 10_000


async def settle_gc(app: web.Application) -> None:
    """``serve``'s last start-up step, once the adapters are open.

    What start-up made (modules, schemas, mappings, settings: ~110,000 objects)
    lives as long as the process, yet every full collection walked all of it:
    on a list of 100 users that was 0.4 ms of the request's ~1.2 ms. It is
    collected once and frozen (``gc.freeze``), out of the collector's sight. And a
    young collection every 700 new objects ran inside nearly every request,
    promoting that request's live temporaries towards the old generation, which
    is what set off those full collections: every 10,000 leaves them time to die.
    Garbage with cycles is still collected; it is simply looked for less often.
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def announce_ready(_start_message: str) -> None:
    """``web.run_app``'s ``print`` for a worker: called once its socket listens.

    The supervisor, the tests and bench/workers.py wait for one such line per
    worker; logged any earlier (from a start-up hook), a worker still busy with
    start-up would be counted while the kernel gives every connection to the others.
    """
    log.info("worker %d ready", os.getpid())


async def exit_with_supervisor(app: web.Application) -> AsyncIterator[None]:
    """A worker's cleanup context: stop gracefully (SIGTERM to itself) once the supervisor
    that started it is gone, rather than serve on as an orphan."""
    parent = os.getppid()

    async def watch() -> None:
        while os.getppid() == parent:  # noqa: ASYNC110 - no event says a parent died
            await asyncio.sleep(1.0)
        log.warning("the supervisor (pid %d) is gone; this worker stops", parent)
        os.kill(os.getpid(), signal.SIGTERM)

    task = asyncio.create_task(watch(), name="watch-supervisor")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
