"""A directory of agno's ``LocalMediaStorage``: one file per key, each with its ``.meta.json``
sidecar when agno wrote one."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from agentos_sessions.persistence.media.storage import (
    ByteRange,
    ChunkedReader,
    MediaNotFound,
    MediaStorage,
    MediaUnavailable,
    StoredObject,
)

logger = logging.getLogger("agentos_sessions")

SIDECAR_SUFFIX = ".meta.json"


class LocalStorage(MediaStorage):
    @property
    def directory(self) -> Path:
        return Path(self.settings.bucket)

    def _path(self, key: str) -> Path:
        """The file of ``key``, which must lie inside the directory once links are resolved."""
        if not self.holds(key):
            raise MediaNotFound(key)
        path = (self.directory / key).resolve()
        if not path.is_relative_to(self.directory):
            raise MediaNotFound(key)
        return path

    def open(self, key: str, byte_range: ByteRange | None = None) -> StoredObject:
        path = self._path(key)
        try:
            body = path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as error:
            raise MediaNotFound(key) from error
        except OSError as error:
            raise MediaUnavailable(f"cannot read {path}: {error}") from error
        try:
            size = os.fstat(body.fileno()).st_size
            start, end = byte_range.within(size) if byte_range else (0, size - 1)
            body.seek(start)
        except BaseException:
            body.close()
            raise
        return ChunkedReader(body, size=size, start=start, end=end, partial=byte_range is not None, errors=(OSError,))

    def copy(self, key: str, new_key: str) -> None:
        source, target = self._path(key), self._path(new_key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # As agno writes: a temporary file renamed into place, so no reader sees half of it.
            partial = target.with_name(f".{target.name}.part")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            sidecar = source.with_name(source.name + SIDECAR_SUFFIX)
            if sidecar.exists():
                shutil.copyfile(sidecar, target.with_name(target.name + SIDECAR_SUFFIX))
        except FileNotFoundError as error:
            raise MediaNotFound(key) from error
        except OSError as error:
            raise MediaUnavailable(f"cannot copy {source} to {target}: {error}") from error

    def delete(self, keys: Sequence[str]) -> int:
        gone = 0
        for key in keys:
            try:
                path = self._path(key)
                path.unlink(missing_ok=True)
                path.with_name(path.name + SIDECAR_SUFFIX).unlink(missing_ok=True)
                gone += 1
            except MediaNotFound:
                logger.warning("Media key %r is not one of %s; not deleted", key, self.directory)
            except OSError as error:
                logger.warning("Could not delete media %r: %s", key, error)
        return gone

    def probe(self) -> None:
        if not self.directory.is_dir():
            raise MediaUnavailable(f"the media directory {self.directory} does not exist")
        if not os.access(self.directory, os.R_OK | os.X_OK):
            raise MediaUnavailable(f"the media directory {self.directory} cannot be read by this user")
