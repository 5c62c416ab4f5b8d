"""What every media storage backend does for the server: read an object (whole or a byte range,
a chunk at a time), sign a URL for it, delete objects, and say at start whether it can be used.

Backends are synchronous (boto3 and google-cloud-storage are): the handlers call them in worker
threads. Each refuses a key outside what agno's backend writes (:meth:`MediaStorage.holds`).
"""

from __future__ import annotations

import contextlib
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from agentos_sessions.settings import MediaStorageSettings

# How much of an object one read takes: what a request holds in memory at a time.
CHUNK_BYTES = 1024 * 1024


class MediaNotFound(Exception):
    """The storage holds no object under the key."""


class MediaUnavailable(Exception):
    """The storage could not be read (unreachable, refused our credentials, ...); the message
    says why, for the log."""


class RangeNotSatisfiable(Exception):
    """The requested byte range starts past the object's end."""

    def __init__(self, size: int):
        super().__init__(f"the object has {size} bytes")
        self.size = size


@dataclass(frozen=True)
class ByteRange:
    """One range of a ``Range: bytes=...`` header: ``first-last``, ``first-`` or the last
    ``suffix`` bytes (RFC 9110 section 14.1.2)."""

    first: int | None = None
    last: int | None = None
    suffix: int | None = None

    def within(self, size: int) -> tuple[int, int]:
        """The first and last byte (inclusive) of an object of ``size`` bytes this range names."""
        if self.suffix is not None:
            if self.suffix == 0 or size == 0:
                raise RangeNotSatisfiable(size)
            return max(size - self.suffix, 0), size - 1
        assert self.first is not None
        if self.first >= size:
            raise RangeNotSatisfiable(size)
        return self.first, size - 1 if self.last is None else min(self.last, size - 1)

    def header(self) -> str:
        """As a ``Range`` header, for a backend that lets its server resolve the range."""
        if self.suffix is not None:
            return f"bytes=-{self.suffix}"
        return f"bytes={self.first}-{'' if self.last is None else self.last}"


class StoredObject(ABC):
    """An object being read: ``size`` bytes in all, of which bytes ``start``..``end`` (inclusive)
    are sent, a byte range of it if ``partial``; :meth:`read` gives them in order, at most
    :data:`CHUNK_BYTES` at a time."""

    size: int
    start: int
    end: int
    partial: bool

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @abstractmethod
    def read(self) -> bytes:
        """The next chunk; ``b""`` once all are read."""

    @abstractmethod
    def close(self) -> None: ...


class MediaStorage(ABC):
    """One configured media storage."""

    def __init__(self, settings: MediaStorageSettings):
        self.settings = settings

    def holds(self, key: str) -> bool:
        """Whether ``key`` is one agno's backend could have written: under the prefix, and a
        plain relative path (no empty, ``.`` or ``..`` segment, no backslash or control
        character), so that no key reaches outside the storage, whatever a backend makes of it."""
        normalized = unicodedata.normalize("NFKC", key)
        if not key.startswith(self.settings.prefix) or normalized != key:
            return False
        if "\\" in key or any(unicodedata.category(c) == "Cc" for c in key):
            return False
        return all(segment not in ("", ".", "..") for segment in key.split("/"))

    @abstractmethod
    def open(self, key: str, byte_range: ByteRange | None = None) -> StoredObject:
        """Start reading the object (the range of it, if given).

        Raises :class:`MediaNotFound`, :class:`RangeNotSatisfiable` or :class:`MediaUnavailable`."""

    def signed_url(self, key: str) -> str | None:
        """A URL a browser can fetch the object from, made from the key alone (never from what a
        run stored), or None if this backend has none (the bytes are streamed instead)."""
        return None

    @abstractmethod
    def copy(self, key: str, new_key: str) -> None:
        """Copy an object to a new key (in the storage, without reading it here where it can).

        Raises :class:`MediaNotFound` or :class:`MediaUnavailable`."""

    @abstractmethod
    def delete(self, keys: Sequence[str]) -> int:
        """Delete these objects, best effort: how many are gone (a key already gone counts)."""

    @abstractmethod
    def probe(self) -> None:
        """Check, at start, that the storage can be used; raise :class:`MediaUnavailable` if not."""


class ChunkedReader(StoredObject):
    """A :class:`StoredObject` over a file-like ``body`` positioned at ``start``; the ``errors``
    its reads and close may raise are :class:`MediaUnavailable`."""

    def __init__(self, body, *, size: int, start: int, end: int, partial: bool, errors: tuple[type[Exception], ...]):
        self._body, self._errors = body, errors
        self._left = end - start + 1
        self.size, self.start, self.end, self.partial = size, start, end, partial

    def read(self) -> bytes:
        if self._left <= 0:
            return b""
        try:
            chunk = self._body.read(min(CHUNK_BYTES, self._left))
        except self._errors as error:
            raise MediaUnavailable(f"reading the object failed: {error}") from error
        if not chunk:
            raise MediaUnavailable(f"the object ended {self._left} bytes early")
        self._left -= len(chunk)
        return chunk

    def close(self) -> None:
        # What was read is sent; a body that fails to close has nothing more to give.
        with contextlib.suppress(*self._errors):
            self._body.close()
