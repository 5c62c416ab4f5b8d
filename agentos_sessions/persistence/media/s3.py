"""An S3 bucket (or an S3-compatible server's) that agno's ``S3MediaStorage`` writes, through
boto3 with its usual credential chain (environment, shared files, instance or task role)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from urllib.parse import quote

from agentos_sessions.persistence.media.storage import (
    ByteRange,
    ChunkedReader,
    MediaNotFound,
    MediaStorage,
    MediaUnavailable,
    RangeNotSatisfiable,
    StoredObject,
)
from agentos_sessions.settings import MediaStorageSettings

logger = logging.getLogger("agentos_sessions")

# DeleteObjects takes at most 1,000 keys.
DELETE_BATCH = 1000
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")
_MISSING = ("NoSuchKey", "404", "NotFound")
_DENIED = ("AccessDenied", "403", "Forbidden")


class S3Storage(MediaStorage):
    def __init__(self, settings: MediaStorageSettings):
        super().__init__(settings)
        import boto3
        from botocore.config import Config

        # SigV4 as agno pins it; bounded waits, so an unreachable endpoint answers 503, not never.
        config = Config(
            signature_version="s3v4",
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=40,
        )
        self._client = boto3.client(
            "s3", region_name=settings.region, endpoint_url=settings.endpoint_url, config=config
        )
        from botocore.exceptions import BotoCoreError, ClientError

        # What boto3 raises, and what a body being read may (urllib3's errors, wrapped or not).
        self._errors = (BotoCoreError, ClientError, OSError)

    def open(self, key: str, byte_range: ByteRange | None = None) -> StoredObject:
        if not self.holds(key):
            raise MediaNotFound(key)
        request = {"Bucket": self.settings.location, "Key": key}
        try:
            # S3 resolves the range itself: one round trip, whatever the range.
            response = self._client.get_object(**request, **({"Range": byte_range.header()} if byte_range else {}))
        except self._errors as error:
            code = _code(error)
            if code in _MISSING:
                raise MediaNotFound(key) from error
            if code in _DENIED:
                # What S3 answers for a missing key to a reader without s3:ListBucket, as for a
                # key it may not read: not an outage to retry. Said in the log, for the operator.
                logger.warning(
                    "s3://%s/%s: access denied (missing, or not readable with these credentials)", *request.values()
                )
                raise MediaNotFound(key) from error
            if code == "InvalidRange":
                raise RangeNotSatisfiable(self._size(key)) from error
            raise MediaUnavailable(f"s3://{self.settings.location}/{key}: {error}") from error
        body, length = response["Body"], response["ContentLength"]
        content_range = response.get("ContentRange")
        if content_range is None:
            # No range asked, or one the server ignored: the whole object.
            return ChunkedReader(body, size=length, start=0, end=length - 1, partial=False, errors=self._errors)
        found = _CONTENT_RANGE.fullmatch(content_range)
        if not found:
            body.close()
            raise MediaUnavailable(f"s3://{self.settings.location}/{key}: an unusable Content-Range {content_range!r}")
        start, end, size = (int(part) for part in found.groups())
        return ChunkedReader(body, size=size, start=start, end=end, partial=True, errors=self._errors)

    def _size(self, key: str) -> int:
        try:
            return self._client.head_object(Bucket=self.settings.location, Key=key)["ContentLength"]
        except self._errors as error:
            if _code(error) in _MISSING:
                raise MediaNotFound(key) from error
            raise MediaUnavailable(f"s3://{self.settings.location}/{key}: {error}") from error

    def signed_url(self, key: str) -> str | None:
        if self.settings.acl == "public-read":
            # agno's S3MediaStorage.get_url for a public bucket.
            encoded = quote(key)
            if self.settings.endpoint_url:
                return f"{self.settings.endpoint_url.rstrip('/')}/{self.settings.location}/{encoded}"
            region = f".{self.settings.region}" if self.settings.region else ""
            return f"https://{self.settings.location}.s3{region}.amazonaws.com/{encoded}"
        return self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.settings.location, "Key": key},
            ExpiresIn=self.settings.presigned_url_expiry,
        )

    def copy(self, key: str, new_key: str) -> None:
        if not (self.holds(key) and self.holds(new_key)):
            raise MediaNotFound(key)
        try:
            # boto3's managed copy: server-side, in parts for objects past 5 GB.
            self._client.copy({"Bucket": self.settings.location, "Key": key}, self.settings.location, new_key)
        except self._errors as error:
            if _code(error) in _MISSING:
                raise MediaNotFound(key) from error
            raise MediaUnavailable(f"s3://{self.settings.location}/{key}: {error}") from error

    def delete(self, keys: Sequence[str]) -> int:
        held = [key for key in keys if self.holds(key)]
        gone = 0
        for first in range(0, len(held), DELETE_BATCH):
            batch = held[first : first + DELETE_BATCH]
            try:
                response = self._client.delete_objects(
                    Bucket=self.settings.location,
                    Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
                )
            except self._errors as error:
                logger.warning(
                    "Could not delete %d media objects from s3://%s: %s", len(batch), self.settings.location, error
                )
                continue
            errors = response.get("Errors") or []
            for failed in errors[:5]:
                logger.warning("Could not delete media %r: %s", failed.get("Key"), failed.get("Message"))
            gone += len(batch) - len(errors)
        return gone

    def probe(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.settings.location)
        except self._errors as error:
            code = _code(error)
            if code in _DENIED:
                # Reading objects needs no right to the bucket itself: go on, and say so.
                logger.warning(
                    "Media storage s3://%s: not allowed to check the bucket (%s); serving its objects anyway",
                    self.settings.location,
                    error,
                )
                return
            if code in (*_MISSING, "NoSuchBucket"):
                raise MediaUnavailable(f"the bucket s3://{self.settings.location} does not exist") from error
            raise MediaUnavailable(f"cannot reach s3://{self.settings.location}: {error}") from error


def _code(error: Exception) -> str | None:
    response = getattr(error, "response", None)
    return (response or {}).get("Error", {}).get("Code")
