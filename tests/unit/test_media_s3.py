"""How the S3 backend reads S3's answers that moto's server does not give: access denied, a
range S3 cannot serve for an object gone meanwhile, a Content-Range it cannot use, a body that
fails half-way (botocore's Stubber answers in place of S3; no network)."""

from __future__ import annotations

import io

import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.response import StreamingBody
from botocore.stub import Stubber

from agentos_sessions.persistence.media import ByteRange, MediaNotFound, MediaUnavailable
from agentos_sessions.persistence.media.s3 import S3Storage
from agentos_sessions.settings import MediaStorageSettings
from tests.media_servers import S3_ENVIRONMENT

KEY = "agno/media/picture.png"
GET = {"Bucket": "media-bucket", "Key": KEY}


@pytest.fixture
def storage(monkeypatch):
    for name, value in S3_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    storage = S3Storage(MediaStorageSettings.from_url("s3://media-bucket?region=us-east-1", source="test"))
    with Stubber(storage._client) as stubber:
        yield storage, stubber
        stubber.assert_no_pending_responses()


def _body(content: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(content), len(content))


def test_access_denied_is_a_missing_object_and_is_logged(storage, caplog):
    storage, stubber = storage
    stubber.add_client_error("get_object", "AccessDenied", "Access Denied", 403, expected_params=GET)
    with pytest.raises(MediaNotFound):
        storage.open(KEY)
    assert [record.getMessage() for record in caplog.records] == [
        f"s3://media-bucket/{KEY}: access denied (missing, or not readable with these credentials)"
    ]


def test_a_range_past_the_end_of_an_object_gone_meanwhile_is_a_missing_object(storage):
    storage, stubber = storage
    stubber.add_client_error("get_object", "InvalidRange", "", 416, expected_params={**GET, "Range": "bytes=100-"})
    stubber.add_client_error("head_object", "404", "Not Found", 404, expected_params=GET)
    with pytest.raises(MediaNotFound):
        storage.open(KEY, ByteRange(first=100))


def test_a_content_range_without_the_size_is_refused(storage):
    storage, stubber = storage
    answer = {"Body": _body(b"0123"), "ContentLength": 4, "ContentRange": "bytes 0-3/*"}
    stubber.add_response("get_object", answer, expected_params={**GET, "Range": "bytes=0-3"})
    with pytest.raises(MediaUnavailable, match=r"an unusable Content-Range 'bytes 0-3/\*'"):
        storage.open(KEY, ByteRange(first=0, last=3))


def test_a_range_the_server_ignored_is_the_whole_object(storage):
    storage, stubber = storage
    stubber.add_response(
        "get_object", {"Body": _body(b"0123456789"), "ContentLength": 10}, expected_params={**GET, "Range": "bytes=2-3"}
    )
    stored = storage.open(KEY, ByteRange(first=2, last=3))
    assert (stored.partial, stored.start, stored.end, stored.size, stored.read(), stored.read()) == (
        False,
        0,
        9,
        10,
        b"0123456789",
        b"",
    )


def test_a_body_that_fails_half_way_is_an_unavailable_storage(storage):
    storage, stubber = storage

    class Failing(io.RawIOBase):
        def readinto(self, buffer):
            raise ReadTimeoutError(endpoint_url="http://s3")

    body = StreamingBody(Failing(), 10)
    stubber.add_response("get_object", {"Body": body, "ContentLength": 10}, expected_params=GET)
    stored = storage.open(KEY)
    with pytest.raises(MediaUnavailable, match="reading the object failed: Read timeout on endpoint URL"):
        stored.read()
    stored.close()
