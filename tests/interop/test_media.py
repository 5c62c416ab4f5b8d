"""Session media as agno 3.1.10 writes it and AgentOS 3.1.10 serves it: GET /sessions/{id}/media/{key}
and delete_media, on each kind of media storage.

A real agno Agent (its model a loopback stub) with ``media_storage=`` runs on the test database:
agno offloads the runs' images and files to a local directory, to moto's S3 server or to a GCS
emulator (both started on loopback by the tests), and stores references in the runs. Our server
and AgentOS 3.1.10 (in this process, on the same database and storage) are asked the same
things; where we go further (ranges, ETags, streaming) the compatibility docs list it.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from agno.agent import Agent
from agno.media import File, Image
from agno.models.openai import OpenAIChat
from agno.os import AgentOS
from google.cloud import storage as gcs
from sqlalchemy import update
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import MediaStorageSettings, SecuritySettings, Settings
from tests.agno_storage import agno_storage
from tests.api.helpers import add_run, stored_runs, stored_session
from tests.direct import DirectDatabase
from tests.interop.openai_stub import chat_completions_stub
from tests.media_servers import GCS_PROJECT, S3_ENVIRONMENT, S3_REGION, gcs_emulator, moto_s3
from tests.servers import free_port
from tests.tokens import hs_secret, token

pytestmark = pytest.mark.interop

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
OTHER_PNG = b"\x89PNG\r\n\x1a\n" + bytes(reversed(range(256))) * 3
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
# A type a browser would run on the API's origin: served as an attachment.
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.domain)</script></svg>'
NOT_CONFIGURED = {"detail": "Media storage is not configured on AgentOS"}


# --- the storages --------------------------------------------------------------------------------


@dataclass
class Backend:
    """One media storage: agno's backend writing to it, our settings reading it, and its objects."""

    name: str
    agno: Any
    settings: MediaStorageSettings
    objects: Callable[[], dict[str, bytes]]
    remove: Callable[[str], None]
    # Another storage of the same kind (another directory or bucket).
    elsewhere: tuple[Any, MediaStorageSettings]


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in S3_ENVIRONMENT.items():
            patch.setenv(name, value)
        with moto_s3(tmp_path_factory.mktemp("moto")) as url:
            yield url


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch, gcs_emulator(tmp_path_factory.mktemp("gcs")) as url:
        patch.setenv("STORAGE_EMULATOR_HOST", url)
        yield url


def _local(tmp_path: Path) -> Backend:
    from agno.media.storage import LocalMediaStorage

    directory = tmp_path / "media"

    def objects() -> dict[str, bytes]:
        return {
            str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*"))
            if path.is_file() and not path.name.endswith(".meta.json")
        }

    def remove(key: str) -> None:
        (directory / key).unlink()

    other = tmp_path / "other-media"
    return Backend(
        "local",
        LocalMediaStorage(base_path=str(directory)),
        MediaStorageSettings.from_url(f"file://{directory}", source="test"),
        objects,
        remove,
        (LocalMediaStorage(base_path=str(other)), MediaStorageSettings.from_url(str(other), source="test")),
    )


def _s3(endpoint: str) -> Backend:
    from agno.media.storage import S3MediaStorage

    client = boto3.client("s3", region_name=S3_REGION, endpoint_url=endpoint)
    bucket, other = f"media-{uuid.uuid4().hex[:12]}", f"other-{uuid.uuid4().hex[:12]}"
    for name in (bucket, other):
        client.create_bucket(Bucket=name)

    def objects() -> dict[str, bytes]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        listed = [item["Key"] for page in pages for item in page.get("Contents", [])]
        return {key: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in listed}

    def settings(name: str) -> MediaStorageSettings:
        return MediaStorageSettings.from_url(f"s3://{name}?region={S3_REGION}&endpoint_url={endpoint}", source="test")

    return Backend(
        "s3",
        S3MediaStorage(bucket, region=S3_REGION, endpoint_url=endpoint),
        settings(bucket),
        objects,
        lambda key: client.delete_object(Bucket=bucket, Key=key),
        (S3MediaStorage(other, region=S3_REGION, endpoint_url=endpoint), settings(other)),
    )


def _gcs() -> Backend:
    from agno.media.storage import GCSMediaStorage

    client = gcs.Client(project=GCS_PROJECT)
    bucket, other = f"media-{uuid.uuid4().hex[:12]}", f"other-{uuid.uuid4().hex[:12]}"
    for name in (bucket, other):
        client.create_bucket(name)

    def objects() -> dict[str, bytes]:
        return {blob.name: blob.download_as_bytes() for blob in client.list_blobs(bucket)}

    def settings(name: str) -> MediaStorageSettings:
        return MediaStorageSettings.from_url(f"gs://{name}?project={GCS_PROJECT}", source="test")

    return Backend(
        "gcs",
        GCSMediaStorage(bucket, project=GCS_PROJECT),
        settings(bucket),
        objects,
        lambda key: client.bucket(bucket).blob(key).delete(),
        (GCSMediaStorage(other, project=GCS_PROJECT), settings(other)),
    )


@pytest.fixture(params=["local", "s3", "gcs"])
def backend(request, tmp_path) -> Backend:
    """An empty media storage of each kind."""
    if request.param == "s3":
        return _s3(request.getfixturevalue("s3_endpoint"))
    if request.param == "gcs":
        request.getfixturevalue("gcs_endpoint")
        return _gcs()
    return _local(tmp_path)


@pytest.fixture
def local_backend(tmp_path) -> Backend:
    return _local(tmp_path)


# --- what the agent writes ------------------------------------------------------------------------


@dataclass
class Written:
    """The storage keys agno gave each object, by name, and their bytes."""

    keys: dict[str, str]
    content: dict[str, bytes]


def _write_sessions(backend: Backend, database_settings, loopback_only, monkeypatch) -> Written:
    """Alice's session s1 (an image, an SVG, a PDF), Bob's s2 and Carol's s3 (an image each),
    written by an agno Agent that offloads its media to ``backend``."""
    monkeypatch.setenv("AGNO_TELEMETRY", "false")
    storage = agno_storage(database_settings)
    with chat_completions_stub(lambda messages: "An image.") as stub:
        agent = Agent(
            id="vision",
            model=OpenAIChat(id="stub-model", base_url=stub.base_url, api_key="test"),
            db=storage,
            media_storage=backend.agno,
            telemetry=False,
        )
        agent.run(
            "What are these?",
            session_id="s1",
            user_id="alice",
            images=[Image(content=PNG, mime_type="image/png"), Image(content=SVG, mime_type="image/svg+xml")],
            files=[File(content=PDF, mime_type="application/pdf", filename="report.pdf")],
        )
        agent.run("And this?", session_id="s2", user_id="bob", images=[Image(content=OTHER_PNG, mime_type="image/png")])
        agent.run("And this?", session_id="s3", user_id="carol", images=[Image(content=PNG, mime_type="image/png")])
    storage.db_engine.dispose()
    assert loopback_only == []
    direct = DirectDatabase(database_settings)
    try:
        inputs = {sid: stored_runs(direct, sid)[0].run_data["input"] for sid in ("s1", "s2", "s3")}
    finally:
        direct.dispose()

    def key(sid: str, kind: str, index: int) -> str:
        return inputs[sid][kind][index]["media_reference"]["storage_key"]

    keys = {
        "png": key("s1", "images", 0),
        "svg": key("s1", "images", 1),
        "pdf": key("s1", "files", 0),
        "bob": key("s2", "images", 0),
        "carol": key("s3", "images", 0),
    }
    content = {"png": PNG, "svg": SVG, "pdf": PDF, "bob": OTHER_PNG, "carol": PNG}
    # What the agent stored is what agno's backend holds, under those keys.
    assert backend.objects() == {keys[name]: content[name] for name in keys}
    return Written(keys, content)


@pytest.fixture
def written(backend, database_settings, loopback_only, monkeypatch) -> Written:
    return _write_sessions(backend, database_settings, loopback_only, monkeypatch)


@pytest.fixture
def written_locally(local_backend, database_settings, loopback_only, monkeypatch) -> Written:
    return _write_sessions(local_backend, database_settings, loopback_only, monkeypatch)


# --- the two servers ------------------------------------------------------------------------------


@pytest.fixture
def serve(database_settings) -> Iterator[Callable[..., TestClient]]:
    """Start our server on the test database with a media storage (or none)."""
    with _Clients() as clients:
        yield lambda media=None, **settings: clients.start(
            create_app(Settings(databases={"main": database_settings}, media_storage=media, **settings))
        )


@pytest.fixture
def serve_agentos(database_settings) -> Iterator[Callable[..., TestClient]]:
    """Start AgentOS 3.1.10 on the same database with agno's media storage (or none)."""
    with _Clients() as clients:
        yield lambda media=None: clients.start(
            AgentOS(db=agno_storage(database_settings), media_storage=media, telemetry=False).get_app()
        )


class _Clients:
    def __enter__(self):
        self.started: list[TestClient] = []
        return self

    def start(self, app) -> TestClient:
        client = TestClient(app).__enter__()
        self.started.append(client)
        return client

    def __exit__(self, *exc):
        for client in self.started:
            client.__exit__(None, None, None)


@pytest.fixture
def ours(serve, backend) -> TestClient:
    return serve(backend.settings)


@pytest.fixture
def agentos(serve_agentos, backend) -> TestClient:
    return serve_agentos(backend.agno)


def _url(session_id: str, key: str) -> str:
    return f"/sessions/{session_id}/media/{key}"


# --- serving ----------------------------------------------------------------------------------------


def test_each_object_is_served_byte_exact_with_agentos_headers(written, backend, ours, agentos, caplog):
    for name, content_type in (("png", "image/png"), ("pdf", "application/pdf")):
        url = _url("s1", written.keys[name])
        with caplog.at_level(logging.INFO, logger="connexion"):
            mine = ours.get(url)
        # Bytes pass the response validation untouched, without a log line each.
        assert [record.getMessage() for record in caplog.records if record.name.startswith("connexion")] == []
        theirs = agentos.get(url)
        assert (mine.status_code, mine.content) == (200, written.content[name])
        assert (theirs.status_code, theirs.content) == (200, written.content[name])
        assert _content_headers(mine) == _content_headers(theirs) == (content_type, "nosniff", None)
        digest = hashlib.sha256(written.content[name]).hexdigest()
        assert (mine.headers["etag"], mine.headers["accept-ranges"]) == (f'"{digest}"', "bytes")
        assert mine.headers["content-length"] == str(len(written.content[name]))


def test_active_content_is_sent_as_an_attachment_as_agentos_does(written, ours, agentos):
    url = _url("s1", written.keys["svg"])
    mine, theirs = ours.get(url), agentos.get(url)
    assert (mine.status_code, mine.content, theirs.status_code, theirs.content) == (200, SVG, 200, SVG)
    assert _content_headers(mine) == _content_headers(theirs) == ("application/octet-stream", "nosniff", "attachment")


def _content_headers(response: httpx.Response) -> tuple:
    return (
        response.headers["content-type"],
        response.headers["x-content-type-options"],
        response.headers.get("content-disposition"),
    )


def test_keys_the_session_does_not_name_are_404_as_in_agentos(written, ours, agentos):
    requests = [
        # No such session.
        _url("nope", written.keys["png"]),
        # Not a key of the session's runs.
        _url("s1", "not-a-key.png"),
        # Bob's object, through Alice's session; Alice's, through Bob's.
        _url("s1", written.keys["bob"]),
        _url("s2", written.keys["png"]),
        # Out of the storage, however spelled.
        _url("s1", "..%2F..%2Fetc%2Fpasswd"),
        _url("s1", "%2e%2e/%2e%2e/etc/passwd"),
        _url("s1", "%2Fetc%2Fpasswd"),
    ]
    answers = [(ours.get(url), agentos.get(url)) for url in requests]
    assert [(mine.status_code, mine.json()) for mine, _ in answers] == [
        (404, {"detail": "Session 'nope' not found"}),
        *[(404, {"detail": "Media not found in this session"})] * 6,
    ]
    assert [(mine.status_code, mine.json()) for mine, _ in answers] == [
        (theirs.status_code, theirs.json()) for _, theirs in answers
    ]


def test_an_object_gone_from_the_storage_is_404_as_in_agentos(written, backend, ours, agentos):
    backend.remove(written.keys["pdf"])
    url = _url("s1", written.keys["pdf"])
    mine, theirs = ours.get(url), agentos.get(url)
    assert (mine.status_code, mine.json()) == (404, {"detail": "Media object not found"})
    if backend.name == "gcs":
        # agno tells a missing object by GCS's message ("No such object"), which the emulator's
        # 404 does not carry: AgentOS answers it 500 there. We go by the status.
        assert (theirs.status_code, theirs.json()) == (500, {"detail": "Failed to fetch media from storage"})
    else:
        assert (theirs.status_code, theirs.json()) == (mine.status_code, mine.json())


def test_media_another_storage_wrote_is_not_served_as_in_agentos(written, backend, serve, serve_agentos):
    agno_elsewhere, settings_elsewhere = backend.elsewhere
    url = _url("s1", written.keys["png"])
    mine, theirs = serve(settings_elsewhere).get(url), serve_agentos(agno_elsewhere).get(url)
    assert (
        (mine.status_code, mine.json())
        == (theirs.status_code, theirs.json())
        == (
            404,
            {"detail": "Media is not served by the configured storage backend"},
        )
    )


def test_without_a_media_storage_both_answer_503(written_locally, serve, serve_agentos, database_settings):
    ours, agentos = serve(None), serve_agentos(None)
    url = _url("s1", written_locally.keys["png"])
    for request in (
        lambda client: client.get(url),
        lambda client: client.delete("/sessions/s1", params={"delete_media": "true"}),
        lambda client: client.request(
            "DELETE",
            "/sessions",
            params={"delete_media": "true"},
            json={"session_ids": ["s1"], "session_types": ["agent"]},
        ),
    ):
        mine, theirs = request(ours), request(agentos)
        assert (mine.status_code, mine.json()) == (theirs.status_code, theirs.json()) == (503, NOT_CONFIGURED)
    direct = DirectDatabase(database_settings)
    try:
        assert stored_session(direct, "s1") is not None
    finally:
        direct.dispose()


def test_one_byte_range_is_served_206(written, ours):
    url, size = _url("s1", written.keys["png"]), len(PNG)
    tag = hashlib.sha256(PNG).hexdigest().join('""')
    cases = [
        ("bytes=0-9", PNG[:10], f"bytes 0-9/{size}"),
        ("bytes=100-", PNG[100:], f"bytes 100-{size - 1}/{size}"),
        ("bytes=-16", PNG[-16:], f"bytes {size - 16}-{size - 1}/{size}"),
        # A last byte past the end stops at the end.
        (f"bytes={size - 4}-{size + 1000}", PNG[-4:], f"bytes {size - 4}-{size - 1}/{size}"),
    ]
    for header, content, content_range in cases:
        response = ours.get(url, headers={"Range": header})
        assert (response.status_code, response.content) == (206, content), header
        assert (response.headers["content-range"], response.headers["content-length"]) == (
            content_range,
            str(len(content)),
        )
        assert (response.headers["content-type"], response.headers["etag"]) == ("image/png", tag)
        # Only while the object is the one the client has.
        response = ours.get(url, headers={"Range": header, "If-Range": tag})
        assert (response.status_code, response.content) == (206, content)
    for ignored in ({"Range": "bytes=0-1,5-6"}, {"Range": "pages=1-2"}, {"Range": "bytes=9-3"}):
        response = ours.get(url, headers=ignored)
        assert (response.status_code, response.content) == (200, PNG), ignored
    response = ours.get(url, headers={"Range": "bytes=0-9", "If-Range": '"another"'})
    assert (response.status_code, response.content) == (200, PNG)
    response = ours.get(url, headers={"Range": f"bytes={size}-"})
    assert (response.status_code, response.json()) == (
        416,
        {"detail": f"Range not satisfiable: the object has {size} bytes"},
    )
    assert response.headers["content-range"] == f"bytes */{size}"


def test_the_content_hash_is_the_etag_and_if_none_match_answers_304(written, ours):
    url = _url("s1", written.keys["pdf"])
    tag = f'"{hashlib.sha256(PDF).hexdigest()}"'
    for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
        response = ours.get(url, headers={"If-None-Match": header})
        assert (response.status_code, response.content, response.headers["etag"]) == (304, b"", tag), header
    response = ours.get(url, headers={"If-None-Match": '"other"'})
    assert (response.status_code, response.content) == (200, PDF)


def test_redirect_is_signed_from_the_key_never_from_the_stored_url(written, backend, ours, agentos, database_settings):
    # Whatever URL a run holds, the redirect is made from the key alone.
    direct = DirectDatabase(database_settings)
    try:
        run = stored_runs(direct, "s1")[0]
        data = run.run_data
        data["input"]["images"][0]["media_reference"]["url"] = "https://attacker.example/steal"
        with direct.unit_of_work() as db:
            db.execute(
                update(direct.models.runs).where(direct.models.runs.c.run_id == run.run_id).values(run_data=data)
            )
    finally:
        direct.dispose()
    url = _url("s1", written.keys["png"])
    mine = ours.get(url, params={"redirect": "true"}, follow_redirects=False)
    theirs = agentos.get(url, params={"redirect": "true"}, follow_redirects=False)
    if backend.name != "s3":
        # Neither a local directory nor a GCS client without a signing key has URLs: the bytes.
        assert (mine.status_code, mine.content, theirs.status_code, theirs.content) == (200, PNG, 200, PNG)
        return
    assert (mine.status_code, theirs.status_code) == (307, 307)
    location = httpx.URL(mine.headers["location"])
    expected = httpx.URL(f"{backend.settings.endpoint_url}/{backend.settings.location}/{written.keys['png']}")
    assert (location.scheme, location.host, location.port, location.path) == (
        expected.scheme,
        expected.host,
        expected.port,
        expected.path,
    )
    assert httpx.URL(theirs.headers["location"]).path == location.path
    assert "X-Amz-Signature" in location.params
    assert httpx.get(location).content == PNG


# --- user isolation and scopes ----------------------------------------------------------------------


def test_media_is_scoped_to_the_callers_sessions(written_locally, local_backend, serve):
    client = serve(
        local_backend.settings, security=SecuritySettings(jwt_verification_key=hs_secret(), user_isolation=True)
    )
    url = _url("s1", written_locally.keys["png"])

    def get(subject: str | None, scopes: list[str], **params) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token(subject, scopes=scopes)}"} if subject else {}
        return client.get(url, headers=headers, params=params)

    response = get("alice", ["sessions:read"])
    assert (response.status_code, response.content) == (200, PNG)
    for response in (get("bob", ["sessions:read"]), get("bob", ["sessions:read"], user_id="alice")):
        assert (response.status_code, response.json()) == (404, {"detail": "Session 's1' not found"})
    response = get("alice", ["sessions:write"])
    assert (response.status_code, response.json()) == (
        403,
        {"detail": "Insufficient permissions. Required scope(s): sessions:read"},
    )
    assert get(None, []).status_code == 401
    response = get("admin", ["agent_os:admin"])
    assert (response.status_code, response.content) == (200, PNG)


# --- delete_media -----------------------------------------------------------------------------------


def test_delete_media_deletes_the_sessions_objects_as_agentos_does(written, backend, ours, agentos, database_settings):
    assert ours.delete("/sessions/s1", params={"delete_media": "true"}).status_code == 204
    assert agentos.delete("/sessions/s3", params={"delete_media": "true"}).status_code == 204
    # Each deleted its session's objects (the sidecars too, on a local directory) and left Bob's.
    assert backend.objects() == {written.keys["bob"]: OTHER_PNG}
    if backend.name == "local":
        sidecars = sorted(path.name for path in Path(backend.settings.location).glob("*.meta.json"))
        assert sidecars == [f"{written.keys['bob']}.meta.json"]
    direct = DirectDatabase(database_settings)
    try:
        assert [stored_session(direct, sid) is None for sid in ("s1", "s2", "s3")] == [True, False, True]
        assert (stored_runs(direct, "s1"), stored_runs(direct, "s3")) == ([], [])
    finally:
        direct.dispose()
    # Without delete_media, the objects stay (as in AgentOS).
    assert ours.delete("/sessions/s2").status_code == 204
    assert backend.objects() == {written.keys["bob"]: OTHER_PNG}


def test_bulk_delete_with_media_deletes_only_the_callers_sessions_objects(written, backend, ours):
    body = {"session_ids": ["s1", "s2", "absent"], "session_types": ["agent", "agent", "agent"]}
    response = ours.request("DELETE", "/sessions", params={"delete_media": "true", "user_id": "alice"}, json=body)
    assert response.status_code == 204
    # Bob's session is not Alice's: it stays, with its object.
    assert backend.objects() == {written.keys["bob"]: OTHER_PNG, written.keys["carol"]: PNG}
    response = ours.request("DELETE", "/sessions", params={"delete_media": "true"}, json=body)
    assert response.status_code == 204
    assert backend.objects() == {written.keys["carol"]: PNG}


def test_delete_media_leaves_objects_a_run_inherited_from_another_session(
    written_locally, local_backend, ours_local, database_settings
):
    bob = _reference_of(database_settings, "s2")
    direct = DirectDatabase(database_settings)
    try:
        assert ours_local.post("/sessions", json={"session_id": "fork", "user_id": "bob"}).status_code == 201
        add_run(direct, "fork", "fork-run", 0, created_at=1, input={"images": [{"id": "i", "media_reference": bob}]})
    finally:
        direct.dispose()
    response = ours_local.get(_url("fork", bob["storage_key"]))
    assert (response.status_code, response.content) == (200, OTHER_PNG)
    assert ours_local.delete("/sessions/fork", params={"delete_media": "true"}).status_code == 204
    assert written_locally.keys["bob"] in local_backend.objects()


def _reference_of(database_settings, session_id: str) -> dict:
    direct = DirectDatabase(database_settings)
    try:
        return stored_runs(direct, session_id)[0].run_data["input"]["images"][0]["media_reference"]
    finally:
        direct.dispose()


@pytest.fixture
def ours_local(serve, local_backend) -> TestClient:
    return serve(local_backend.settings)


def test_a_storage_that_fails_does_not_fail_the_delete(
    s3_endpoint, serve, database_settings, loopback_only, monkeypatch, caplog
):
    backend = _s3(s3_endpoint)
    written = _write_sessions(backend, database_settings, loopback_only, monkeypatch)
    # The same bucket, behind an endpoint that refuses connections.
    dead = f"http://127.0.0.1:{free_port()}"
    settings = MediaStorageSettings.from_url(
        f"s3://{backend.settings.location}?region={S3_REGION}&endpoint_url={dead}", source="test"
    )
    with caplog.at_level(logging.WARNING, logger="agentos_sessions"):
        response = serve(settings).delete("/sessions/s1", params={"delete_media": "true"})
    assert response.status_code == 204
    direct = DirectDatabase(database_settings)
    try:
        assert stored_session(direct, "s1") is None
    finally:
        direct.dispose()
    assert set(backend.objects()) == set(written.keys.values())
    assert [record.getMessage().split(": ")[0] for record in caplog.records] == [
        f"Could not delete 3 media objects from s3://{backend.settings.location}",
        "Deleted 0 of 3 media objects; the rest stay in the storage",
    ]


def test_delete_media_deletes_more_than_one_batch_of_s3_objects(s3_endpoint, serve, database_settings):
    """DeleteObjects takes 1,000 keys at a time: a session with 1,001 objects needs two calls."""
    backend = _s3(s3_endpoint)
    ours = serve(backend.settings)
    assert ours.post("/sessions", json={"session_id": "big"}).status_code == 201
    references = []
    for index in range(1001):
        content = index.to_bytes(4, "big")
        key = backend.agno.upload(f"big-{index}", content, mime_type="image/png")
        references.append(
            {
                "id": f"i{index}",
                "media_reference": {
                    "media_id": f"i{index}",
                    "storage_key": key,
                    "session_id": "big",
                    "storage_backend": "s3",
                    "bucket": backend.settings.location,
                    "region": S3_REGION,
                    "mime_type": "image/png",
                    "size": 4,
                    "content_hash": hashlib.sha256(content).hexdigest(),
                },
            }
        )
    direct = DirectDatabase(database_settings)
    try:
        add_run(direct, "big", "big-run", 0, created_at=1, images=references)
    finally:
        direct.dispose()
    assert len(backend.objects()) == 1001
    assert ours.delete("/sessions/big", params={"delete_media": "true"}).status_code == 204
    assert backend.objects() == {}


# --- forks ------------------------------------------------------------------------------------------


def test_a_fork_has_its_own_copies_of_the_media(written, backend, ours, database_settings):
    response = ours.post("/sessions/s1/fork", json={"session_id": "fork"})
    assert response.status_code == 201
    reference = _reference_of(database_settings, "fork")
    assert (reference["session_id"], reference["storage_key"] == written.keys["png"], "url" in reference) == (
        "fork",
        False,
        False,
    )
    assert reference["storage_key"].startswith(f"{backend.settings.prefix}fork-")
    # The original's media deleted with it: the fork's stay, byte for byte.
    assert ours.delete("/sessions/s1", params={"delete_media": "true"}).status_code == 204
    response = ours.get(_url("fork", reference["storage_key"]))
    assert (response.status_code, response.content) == (200, PNG)
    fork_keys = {key for key in backend.objects() if key.startswith(f"{backend.settings.prefix}fork-")}
    assert {backend.objects()[key] for key in fork_keys} == {PNG, SVG, PDF}
    assert not set(written.keys[name] for name in ("png", "svg", "pdf")) & set(backend.objects())
    # And the fork's own, deleted with it, leave the others'.
    assert ours.delete("/sessions/fork", params={"delete_media": "true"}).status_code == 204
    assert set(backend.objects()) == {written.keys["bob"], written.keys["carol"]}


def test_a_session_with_media_is_not_forked_without_a_media_storage(written_locally, serve, database_settings):
    response = serve(None).post("/sessions/s1/fork", json={"session_id": "fork"})
    assert (response.status_code, response.json()) == (503, NOT_CONFIGURED)
    direct = DirectDatabase(database_settings)
    try:
        assert stored_session(direct, "fork") is None
    finally:
        direct.dispose()
