"""The `lastmile` command as `make run` uses it: migrate, seed the demo agency, serve."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

LASTMILE = [sys.executable, "-m", "web.cli"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LASTMILE_")}
    env.update({"LASTMILE_DATA_DIR": str(tmp_path / "var"), "LASTMILE_LOG_FORMAT": "json", **extra})
    return env


def test_seed_demo_refuses_outside_demo_mode(tmp_path: Path) -> None:
    done = subprocess.run(
        [*LASTMILE, "seed-demo"], env=_env(tmp_path), capture_output=True, text=True, check=False
    )
    assert done.returncode == 2 and "LASTMILE_DEMO=1" in done.stderr


def test_migrate_seed_and_serve(tmp_path: Path) -> None:
    port = _free_port()
    env = _env(tmp_path, LASTMILE_DEMO="1", LASTMILE_PORT=str(port))
    for command in ("migrate", "seed-demo", "seed-demo"):
        subprocess.run([*LASTMILE, command], env=env, check=True, capture_output=True)
    assert (tmp_path / "var" / "lastmile.db").is_file()
    server = subprocess.Popen(
        [*LASTMILE, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        banner = ""
        assert server.stdout is not None
        while "Stop with Ctrl-C" not in banner:
            line = server.stdout.readline()
            assert line, f"server exited: {server.stderr.read() if server.stderr else ''}"
            banner += line
        base = f"http://127.0.0.1:{port}"
        assert f"{base}/worker" in banner and "worker@example.org" in banner and "lastmile-demo" in banner
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as resp:
            assert json.load(resp)["status"] == "ok"
        request = urllib.request.Request(
            f"{base}/api/session",
            data=json.dumps({"email": "worker@example.org", "password": "lastmile-demo"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            token = json.load(resp)["token"]
        cases_req = urllib.request.Request(f"{base}/api/cases", headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(cases_req, timeout=10) as resp:
            assert len(json.load(resp)) == 3  # seeded once, though seed-demo ran twice
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0
