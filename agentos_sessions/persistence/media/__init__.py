"""Run media that agno offloaded to a media storage: the backends that read and delete it
(:func:`open_media_storage`) and the references to it in stored runs (``references``)."""

from __future__ import annotations

import importlib.util

from agentos_sessions.persistence.media import references
from agentos_sessions.persistence.media.storage import (
    CHUNK_BYTES,
    ByteRange,
    MediaNotFound,
    MediaStorage,
    MediaUnavailable,
    RangeNotSatisfiable,
    StoredObject,
)
from agentos_sessions.settings import MediaStorageSettings, Settings, SettingsError

__all__ = [
    "CHUNK_BYTES",
    "ByteRange",
    "MediaNotFound",
    "MediaStorage",
    "MediaUnavailable",
    "RangeNotSatisfiable",
    "StoredObject",
    "check_library",
    "open_media_storage",
    "open_media_storages",
    "references",
]

# The library each backend needs, and the extra that installs it.
_LIBRARIES = {"s3": ("boto3", "s3"), "gcs": ("google.cloud.storage", "gcs")}


def check_library(settings: MediaStorageSettings) -> None:
    """Raise SettingsError, saying what to install, if the backend's library is missing."""
    if settings.backend not in _LIBRARIES:
        return
    module, extra = _LIBRARIES[settings.backend]
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise SettingsError(
            f"media storage {settings.backend}://{settings.location} needs {module.split('.')[0]}: "
            f"pip install 'agentos-sessions[{extra}]'"
        )


def open_media_storage(settings: MediaStorageSettings) -> MediaStorage:
    """The backend for ``settings`` (its client made, nothing read yet)."""
    check_library(settings)
    if settings.backend == "s3":
        from agentos_sessions.persistence.media.s3 import S3Storage

        return S3Storage(settings)
    if settings.backend == "gcs":
        from agentos_sessions.persistence.media.gcs import GCSStorage

        return GCSStorage(settings)
    from agentos_sessions.persistence.media.local import LocalStorage

    return LocalStorage(settings)


def open_media_storages(settings: Settings) -> dict[str, MediaStorage | None]:
    """Each database's media storage (None: it has none), one backend per distinct storage."""
    opened: dict[MediaStorageSettings, MediaStorage] = {}
    storages: dict[str, MediaStorage | None] = {}
    for db_id in settings.databases:
        wanted = settings.media_storage_of(db_id)
        if wanted is not None and wanted not in opened:
            opened[wanted] = open_media_storage(wanted)
        storages[db_id] = opened[wanted] if wanted is not None else None
    return storages
