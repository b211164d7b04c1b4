"""`scim-gateway serve` as an operator meets it: a start line, one-line failures, --version."""

from __future__ import annotations

import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from gateway.cli import main
from gateway.workers import GC_YOUNG_THRESHOLD, settle_gc

AS_10001 = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups"]
TOKEN = "serve-test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp_path: Path, port: int, **extra: object) -> Path:
    path = tmp_path / "gateway.yaml"
    data = {
        "server": {"host": "127.0.0.1", "port": port, "log_format": "text"},
        "apps": {
            "crm": {"adapter": "memory", "auth": {"tokens": [{"name": "t", "secret": TOKEN}]}}
        },
        **extra,
    }
    path.write_text(yaml.safe_dump(data), "utf-8")
    return path


def serve(path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def listening() -> Iterator[int]:
    """A port some other program already listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_serve_prints_one_start_line_once_it_listens(tmp_path: Path) -> None:
    port = free_port()
    proc = serve(config(tmp_path, port))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert " serving 1 app(s) (crm) on http://127.0.0.1:" in line
        assert line.startswith("scim-gateway ") and f":{port} (pid {proc.pid})" in line
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # the line came after the port was bound
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_a_taken_port_is_one_line_on_stderr_and_exit_2(tmp_path: Path, listening: int) -> None:
    proc = serve(config(tmp_path, listening))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [
        f"scim-gateway serve: cannot listen on 127.0.0.1:{listening}: the port is in use"
    ]
    assert "Traceback" not in out + err


def test_an_unusable_state_store_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    store = f"sqlite:///{tmp_path / 'a-file' / 'state.db'}"
    proc = serve(config(tmp_path, free_port(), state={"url": store}))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("scim-gateway serve: the state store cannot be used: ")
    assert "Traceback" not in out + err


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder other users can read (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="scim-serve-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run as another user")
def test_a_store_folder_the_user_cannot_write_is_one_line(open_tmp: Path) -> None:
    """The image's failure: root-owned folder, process as uid 10001."""
    (open_tmp / "root-only").mkdir(mode=0o755)
    path = config(open_tmp, free_port(), state={"url": "sqlite:///root-only/state.db"})
    path.chmod(0o644)
    proc = subprocess.run(
        [*AS_10001, sys.executable, "-m", "gateway.cli", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert "the state store cannot be used: cannot open the SQLite state file" in line


def test_version_names_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    name, version = capsys.readouterr().out.split()
    assert name == "scim-gateway" and version[0].isdigit()


@pytest.mark.parametrize("command", ["serve", "check", "render"])
def test_the_config_option_shows_its_default(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SCIM_GATEWAY_CONFIG", raising=False)
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "the config file (default: gateway.yaml, from $SCIM_GATEWAY_CONFIG" in help_text


def test_serve_with_workers_prints_one_start_line(tmp_path: Path) -> None:
    port = free_port()
    path = config(tmp_path, port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "-c", str(path), "--workers", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert f"on http://127.0.0.1:{port} (pid {proc.pid})" in proc.stdout.readline()
        deadline = time.monotonic() + 60
        while True:  # both workers up: /readyz answers
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=90)
    assert not [line for line in out.splitlines() if line.startswith("scim-gateway ")]


def test_serve_settles_the_collector_last_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    captured: list[web.Application] = []
    monkeypatch.setattr("gateway.cli.web.run_app", lambda app, **_: captured.append(app))
    assert main(["serve", "--config", str(config(tmp_path, free_port()))]) == 0
    (app,) = captured
    # After the cleanup contexts' start-up (the adapters open): what start-up made is frozen.
    assert list(app.on_startup)[-1] is settle_gc


async def test_settling_freezes_what_start_up_made_and_spaces_young_collections() -> None:
    threshold = gc.get_threshold()
    try:
        await settle_gc(web.Application())
        assert gc.get_freeze_count() > 10_000  # this test process's modules, at least
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, threshold[1], threshold[2])
        assert gc.isenabled()  # cycles are still collected
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_serve_on_uvloop_says_so_and_answers_scim(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    port = free_port()
    server = {"host": "127.0.0.1", "port": port, "log_format": "text", "event_loop": "uvloop"}
    path = config(tmp_path, port)
    data = yaml.safe_load(path.read_text("utf-8"))
    data["server"] = server
    path.write_text(yaml.safe_dump(data), "utf-8")
    proc = serve(path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.rstrip().endswith(f":{port} (pid {proc.pid}) on uvloop"), line
        base = f"http://127.0.0.1:{port}/apps/crm/scim/v2/Users"
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/scim+json"}
        body = b'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"uv"}'
        create = urllib.request.Request(base, body, headers, method="POST")
        with urllib.request.urlopen(create, timeout=10) as answer:
            assert answer.status == 201
            user_id = json.loads(answer.read())["id"]
        read = urllib.request.Request(f"{base}/{user_id}", headers=headers)
        with urllib.request.urlopen(read, timeout=10) as answer:
            assert json.loads(answer.read())["userName"] == "uv"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
