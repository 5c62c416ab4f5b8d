"""A Google Cloud Storage bucket that agno's ``GCSMediaStorage`` writes, through
google-cloud-storage (application default credentials, or a service-account file; the
``STORAGE_EMULATOR_HOST`` variable points it at an emulator)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from urllib.parse import quote

from agentos_sessions.persistence.media.storage import (
    CHUNK_BYTES,
    ByteRange,
    MediaNotFound,
    MediaStorage,
    MediaUnavailable,
    StoredObject,
)
from agentos_sessions.settings import MediaStorageSettings

logger = logging.getLogger("agentos_sessions")

# Seconds to connect, and to wait for each read.
_TIMEOUT = (5, 30)


class GCSStorage(MediaStorage):
    def __init__(self, settings: MediaStorageSettings):
        super().__init__(settings)
        from google.api_core.exceptions import GoogleAPIError, NotFound
        from google.auth.exceptions import GoogleAuthError
        from google.cloud import storage

        self._errors = (GoogleAPIError, GoogleAuthError, OSError)
        self._not_found = NotFound
        try:
            if settings.credentials_path:
                client = storage.Client.from_service_account_json(settings.credentials_path, project=settings.project)
            else:
                client = storage.Client(project=settings.project)
        except (*self._errors, ValueError) as error:
            raise MediaUnavailable(f"gs://{settings.location}: no usable credentials: {error}") from error
        self._bucket = client.bucket(settings.location)

    def open(self, key: str, byte_range: ByteRange | None = None) -> StoredObject:
        if not self.holds(key):
            raise MediaNotFound(key)
        try:
            blob = self._bucket.get_blob(key, timeout=_TIMEOUT)
        except self._errors as error:
            raise MediaUnavailable(f"gs://{self.settings.location}/{key}: {error}") from error
        if blob is None:
            raise MediaNotFound(key)
        size = blob.size or 0
        start, end = byte_range.within(size) if byte_range else (0, size - 1)
        return _BlobReader(blob, self._errors, size=size, start=start, end=end, partial=byte_range is not None)

    def signed_url(self, key: str) -> str | None:
        if self.settings.public:
            return f"https://storage.googleapis.com/{self.settings.location}/{quote(key)}"
        try:
            return self._bucket.blob(key).generate_signed_url(
                version="v4", expiration=timedelta(seconds=self.settings.presigned_url_expiry)
            )
        except AttributeError:
            # Credentials without a private key (application default ones) cannot sign: stream.
            return None
        except (*self._errors, ValueError) as error:
            # Signing failed otherwise (a credential that cannot be refreshed, ...): stream, as agno.
            logger.warning(
                "Could not sign a URL for gs://%s/%s, streaming instead: %s", self.settings.location, key, error
            )
            return None

    def copy(self, key: str, new_key: str) -> None:
        if not (self.holds(key) and self.holds(new_key)):
            raise MediaNotFound(key)
        try:
            # Server-side: the bytes do not pass through this server.
            self._bucket.copy_blob(self._bucket.blob(key), self._bucket, new_key, timeout=_TIMEOUT)
        except self._not_found as error:
            raise MediaNotFound(key) from error
        except self._errors as error:
            raise MediaUnavailable(f"gs://{self.settings.location}/{key}: {error}") from error

    def delete(self, keys: Sequence[str]) -> int:
        # One request per key, as agno: a batch fails whole on the first key already gone.
        gone = 0
        for key in keys:
            if not self.holds(key):
                continue
            try:
                self._bucket.blob(key).delete(timeout=_TIMEOUT)
                gone += 1
            except self._not_found as error:
                if "no such object" in str(error).lower():
                    gone += 1
                else:
                    logger.warning("Could not delete media %r from gs://%s: %s", key, self.settings.location, error)
            except self._errors as error:
                logger.warning("Could not delete media %r from gs://%s: %s", key, self.settings.location, error)
        return gone

    def probe(self) -> None:
        try:
            next(iter(self._bucket.list_blobs(prefix=self.settings.prefix, max_results=1, timeout=_TIMEOUT)), None)
        except self._not_found as error:
            raise MediaUnavailable(f"the bucket gs://{self.settings.location} does not exist") from error
        except self._errors as error:
            if getattr(error, "code", None) == 403:
                logger.warning(
                    "Media storage gs://%s: not allowed to list the bucket (%s); serving its objects anyway",
                    self.settings.location,
                    error,
                )
                return
            raise MediaUnavailable(f"cannot reach gs://{self.settings.location}: {error}") from error


class _BlobReader(StoredObject):
    """A blob read a chunk per request (a ranged GET of 1 MiB: 200 of them for a 200 MB video,
    which google-cloud-storage's own BlobReader does alike), each pinned to the generation first
    seen: an object replaced meanwhile fails the read instead of mixing two versions."""

    def __init__(self, blob, errors, *, size: int, start: int, end: int, partial: bool):
        self._blob, self._errors = blob, errors
        self._next = start
        self.size, self.start, self.end, self.partial = size, start, end, partial

    def read(self) -> bytes:
        if self._next > self.end:
            return b""
        last = min(self._next + CHUNK_BYTES - 1, self.end)
        try:
            chunk = self._blob.download_as_bytes(
                start=self._next,
                end=last,
                if_generation_match=self._blob.generation,
                checksum=None,
                timeout=_TIMEOUT,
            )
        except self._errors as error:
            raise MediaUnavailable(f"gs://{self._blob.bucket.name}/{self._blob.name}: {error}") from error
        if len(chunk) != last - self._next + 1:
            raise MediaUnavailable(f"gs://{self._blob.bucket.name}/{self._blob.name}: a short read")
        self._next = last + 1
        return chunk

    def close(self) -> None:
        pass
