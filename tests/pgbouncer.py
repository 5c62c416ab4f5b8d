"""Debian's PgBouncer (`apt-get install -y pgbouncer`) in front of the test PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import make_url

from tests.servers import free_port, stop, wait_until_listening

POOL_MODES = ("transaction", "session")


@contextmanager
def pgbouncer(server_url: str, pool_mode: str) -> Iterator[str]:
    """A PgBouncer in ``pool_mode`` on a free loopback port, passing every database through to
    the server of ``server_url``; yields ``server_url`` with the pooler's address instead."""
    executable = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    assert os.path.exists(executable), "PgBouncer is not installed: apt-get install -y pgbouncer"
    target = make_url(server_url)
    port = free_port()
    # PgBouncer refuses to run as root; as root it is told to become nobody, who must read this.
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    directory.chmod(0o755)
    (directory / "users.txt").write_text(f'"{target.username or "postgres"}" "{target.password or ""}"\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        "auth_type = trust\n"
        f"auth_file = {directory / 'users.txt'}\n"
        f"pool_mode = {pool_mode}\n"
        # Transaction mode: fewer server connections than clients, whose transactions share them.
        # Session mode holds one for each client connection: room for a server's whole pool.
        f"default_pool_size = {4 if pool_mode == 'transaction' else 24}\n"
        "max_client_conn = 500\n"
    )
    for path in directory.iterdir():
        path.chmod(0o644)
    as_user = ["-u", "nobody"] if os.geteuid() == 0 else []
    log = directory / "pgbouncer.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [executable, *as_user, str(directory / "pgbouncer.ini")], stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_until_listening(process, port, log, seconds=10)
        yield target.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)
    finally:
        stop(process)
        shutil.rmtree(directory, ignore_errors=True)
