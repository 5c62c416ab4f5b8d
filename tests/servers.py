"""The real program for tests: `agentos-sessions serve` in its own process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

from agentos_sessions.settings import DatabaseSettings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_listening(process: subprocess.Popen, port: int, log: Path, *, seconds: float = 30) -> None:
    """Return once ``process`` accepts connections on the loopback ``port``; fail, showing its
    ``log``, if it ends or ``seconds`` pass first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert process.poll() is None, log.read_text()
            late = f"{process.args[0]} did not listen within {seconds:g} s"
            assert time.monotonic() < deadline, f"{late}\n{log.read_text()}"
            time.sleep(0.05)


def stop(process: subprocess.Popen) -> None:
    """End ``process``: SIGTERM, then SIGKILL if it has not ended within 10 s."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def command(name: str) -> str:
    """The path of one of the package's console scripts, as installed beside this Python."""
    executable = shutil.which(name, path=os.path.dirname(sys.executable))
    assert executable, f"the console script {name} is installed with the package"
    return executable


def environment_for(database: DatabaseSettings, **variables: str) -> dict[str, str]:
    """This process's environment, plus the database's schema and ``variables``."""
    schema = {"AGENTOS_SESSIONS_DB_SCHEMA": database.db_schema} if database.db_schema else {}
    return {**os.environ, **schema, **variables}


class Server(NamedTuple):
    """A started `agentos-sessions serve`: its process, base URL and log file."""

    process: subprocess.Popen
    url: str
    log: Path


@contextmanager
def started_server(database: DatabaseSettings, directory: Path, *options: str, **variables: str) -> Iterator[Server]:
    """`agentos-sessions serve` on a free loopback port, up once /health answers.

    Its output goes to ``directory``/server-<port>.log, shown when it fails to start. At the end
    it is stopped with SIGTERM, unless the test has already ended it some other way."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = directory / f"server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [command("agentos-sessions"), "serve", "--port", str(port), "--database-url", database.url, *options],
            cwd=directory,
            env=environment_for(database, **variables),
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
            assert time.monotonic() < deadline, f"server did not start within 30 s\n{log.read_text()}"
            time.sleep(0.1)
        yield Server(process, url, log)
    finally:
        process.terminate()  # nothing, if it has ended
        process.wait(timeout=10)


@contextmanager
def running_server(database: DatabaseSettings, directory: Path, *options: str, **variables: str) -> Iterator[str]:
    """The base URL of a :func:`started_server`, which must shut down cleanly on SIGTERM."""
    with started_server(database, directory, *options, **variables) as server:
        yield server.url
    # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
    assert server.process.returncode in (0, -15), server.log.read_text()[-3000:]
