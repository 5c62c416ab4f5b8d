"""The server as a user installs it: migrate, check, serve, and answer a request.

Run with the interpreter (and on the PATH) of an installation of agentos-sessions: a wheel in a
fresh venv (`tox -e installed`), or `pip install --user` (.ci/run). It needs only the standard
library, and uses nothing of the checkout but this file: the contract and the migrations must
come from the installed package.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def main() -> int:
    # One import name, and its dist-info (the script's entry is outside site-packages: "../").
    files = importlib.metadata.distribution("agentos-sessions").files
    top_level = {file.parts[0] for file in files if file.parts[0] != ".."}
    distribution = importlib.metadata.distribution("agentos-sessions")
    expected = {"agentos_sessions", f"agentos_sessions-{distribution.version}.dist-info"}
    if top_level != expected:
        print(f"the installation holds {sorted(top_level)}, not {sorted(expected)}", file=sys.stderr)
        return 1
    command = shutil.which("agentos-sessions")
    if command is None:
        print("agentos-sessions is not on the PATH", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite:///{Path(directory) / 'installed.db'}"
        # Outside the checkout, where no openapi.yaml or migrations directory could be picked up.
        run = {"cwd": directory, "check": True, "timeout": 120}
        subprocess.run([command, "migrate", "--database-url", url], **run)
        subprocess.run([command, "check", "--database-url", url], **run)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = subprocess.Popen(
            [command, "serve", "--port", str(port), "--database-url", url, "--no-access-log"], cwd=directory
        )
        try:
            base = f"http://127.0.0.1:{port}"
            health = _wait_for(f"{base}/health")
            assert health["status"] == "ok", health
            created = _request("POST", f"{base}/sessions?type=agent", {"session_name": "installed", "agent_id": "a"})
            fetched = _request("GET", f"{base}/sessions/{created['session_id']}?type=agent")
            assert fetched["session_name"] == "installed", fetched
            contract = _request("GET", f"{base}/openapi.json")
            assert contract["openapi"] == "3.1.0", contract["openapi"]
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"{command}: migrate, check and serve work as installed")
    return 0


def _request(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_for(url: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        try:
            return _request("GET", url)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


if __name__ == "__main__":
    sys.exit(main())
