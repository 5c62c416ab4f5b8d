"""Media storages the tests start on loopback: moto's S3 server and a GCS emulator, both from
PyPI (the test extra), each on a free port, stopped when the block ends. No other network."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.servers import command, free_port, stop, wait_until_listening

# boto3's credential chain, for tests only: moto accepts any key; nothing is read from ~/.aws.
S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
S3_REGION = "us-east-1"
GCS_PROJECT = "test"


@contextmanager
def _started(arguments: list[str], port: int, log: Path) -> Iterator[str]:
    with log.open("wb") as output:
        process = subprocess.Popen(arguments, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_listening(process, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)


@contextmanager
def moto_s3(directory: Path) -> Iterator[str]:
    """moto's server mode (an S3 API in memory): its endpoint URL."""
    port = free_port()
    with _started([command("moto_server"), "-H", "127.0.0.1", "-p", str(port)], port, directory / "moto.log") as url:
        yield url


@contextmanager
def gcs_emulator(directory: Path) -> Iterator[str]:
    """gcp-storage-emulator, in memory: its endpoint (the value of STORAGE_EMULATOR_HOST)."""
    port = free_port()
    arguments = [command("gcp-storage-emulator"), "start", "--host=127.0.0.1", f"--port={port}", "--in-memory"]
    with _started(arguments, port, directory / "gcs-emulator.log") as url:
        yield url
