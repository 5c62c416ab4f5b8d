"""The real program: `agentos-sessions serve` in its own process, fuzzed over HTTP by the Schemathesis CLI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """`agentos-sessions serve` on a free loopback port with a fresh SQLite file; its base URL."""
    port = _free_port()
    executable = shutil.which("agentos-sessions", path=os.path.dirname(sys.executable))
    assert executable, "the console script is installed with the package"
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [executable, "serve", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'live.db'}"],
            cwd=tmp_path,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not start within 30 s"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_answers_health_docs_and_spec(served):
    assert httpx.get(f"{served}/health").json()["status"] == "ok"
    assert "swagger-ui" in httpx.get(f"{served}/docs/").text
    assert httpx.get(f"{served}/openapi.json").json()["openapi"] == "3.1.0"


def test_schemathesis_cli_against_the_served_app_finds_no_failures(served):
    schemathesis = shutil.which("schemathesis", path=os.path.dirname(sys.executable))
    result = subprocess.run(
        [schemathesis, "run", "openapi.yaml", "--url", served, "--max-examples", "20"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "Tested: 11" in result.stdout
