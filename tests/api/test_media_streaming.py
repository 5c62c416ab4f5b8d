"""A large media object is streamed: the server holds a chunk of it at a time, not the object.

A 200 MB object, in a local directory and on moto's S3 server, is downloaded whole and in a
range from a served `agentos-sessions serve` process, whose peak resident memory (VmHWM) is read
before and after.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import httpx
import pytest

from tests.api.helpers import add_run
from tests.direct import DirectDatabase
from tests.media_servers import S3_ENVIRONMENT, S3_REGION, moto_s3
from tests.servers import started_server

pytestmark = pytest.mark.slow

SIZE = 200 * 1024 * 1024
# The object: 200 copies of one random MiB, so that every byte counts in the digest.
BLOCK = os.urandom(1024 * 1024)
KEY = "agno/media/big-0123456789abcdef.mp4"
# What the server may add to its peak memory while sending the object (it reads 1 MiB at a time).
HEADROOM = 48 * 1024 * 1024


def _object() -> bytes:
    return BLOCK * (SIZE // len(BLOCK))


def _reference(bucket: str, region: str | None, digest: str) -> dict:
    return {
        "media_id": "big",
        "storage_key": KEY,
        "session_id": "big",
        "storage_backend": "s3" if region else "local",
        "bucket": bucket,
        **({"region": region} if region else {}),
        "mime_type": "video/mp4",
        "size": SIZE,
        "content_hash": digest,
        "media_type": "video",
    }


def _peak_memory(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


@pytest.fixture(params=["local", "s3"])
def stored(request, tmp_path):
    """The 200 MB object in a media storage of each kind: (--media-storage, server variables, bucket, region)."""
    content = _object()
    if request.param == "local":
        directory = tmp_path / "media"
        (directory / KEY).parent.mkdir(parents=True)
        (directory / KEY).write_bytes(content)
        return str(directory), {}, str(directory.resolve()), None
    endpoint = request.getfixturevalue("s3_endpoint_for_streaming")
    client = boto3.client("s3", region_name=S3_REGION, endpoint_url=endpoint, **_keys())
    client.create_bucket(Bucket="big-media")
    client.put_object(Bucket="big-media", Key=KEY, Body=content, ContentType="video/mp4")
    return f"s3://big-media?region={S3_REGION}&endpoint_url={endpoint}", S3_ENVIRONMENT, "big-media", S3_REGION


def _keys() -> dict:
    return {"aws_access_key_id": S3_ENVIRONMENT["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3_endpoint_for_streaming(tmp_path_factory):
    with moto_s3(tmp_path_factory.mktemp("moto")) as url:
        yield url


def test_a_200_mb_object_is_streamed_in_flat_memory(stored, database_settings, tmp_path):
    media_storage, variables, bucket, region = stored
    digest = hashlib.sha256(_object()).hexdigest()
    with started_server(
        database_settings, tmp_path / "server", "--media-storage", media_storage, **variables
    ) as server:
        url, pid = server.url, server.process.pid
        assert httpx.post(f"{url}/sessions", json={"session_id": "big"}).status_code == 201
        direct = DirectDatabase(database_settings)
        try:
            add_run(
                direct,
                "big",
                "run-1",
                0,
                created_at=1,
                videos=[{"id": "v", "media_reference": _reference(bucket, region, digest)}],
            )
        finally:
            direct.dispose()
        before = _peak_memory(pid)
        received, sha = 0, hashlib.sha256()
        with httpx.stream("GET", f"{url}/sessions/big/media/{KEY}", timeout=60) as response:
            assert response.status_code == 200
            assert (response.headers["content-length"], response.headers["content-type"]) == (str(SIZE), "video/mp4")
            assert response.headers["etag"] == f'"{digest}"'
            for chunk in response.iter_bytes():
                received += len(chunk)
                sha.update(chunk)
        assert (received, sha.hexdigest()) == (SIZE, digest)
        middle = SIZE // 2 + 12345
        response = httpx.get(f"{url}/sessions/big/media/{KEY}", headers={"Range": f"bytes={middle}-{middle + 99}"})
        assert (response.status_code, response.headers["content-range"]) == (
            206,
            f"bytes {middle}-{middle + 99}/{SIZE}",
        )
        assert response.content == _object()[middle : middle + 100]
        grown = _peak_memory(pid) - before
    assert grown < HEADROOM, f"peak memory grew {grown / 2**20:.1f} MiB while sending 200 MiB"
