"""``agentos-sessions serve`` and its media storage: a storage that cannot be used, or a URL that
is wrong, stops it before it listens or touches a database, with a plain message; a usable one
lets it go on. ``server.serve`` is replaced, so that no test here ever listens."""

from __future__ import annotations

import json

import boto3
import pytest

from agentos_sessions import cli, server
from tests.media_servers import S3_ENVIRONMENT, S3_REGION, moto_s3
from tests.servers import free_port


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    """No media storage or databases from the environment this runs in."""
    for name in ("AGENTOS_SESSIONS_DATABASES", "AGENTOS_SESSIONS_DATABASE_URL", "AGENTOS_SESSIONS_MEDIA_STORAGE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def served(monkeypatch) -> list[dict]:
    """The calls to server.serve: what serve would have listened with."""
    calls = []

    def serve(app_factory, **options):
        calls.append(options)
        return 0

    monkeypatch.setattr(server, "serve", serve)
    return calls


def serve(database, *options: str) -> int:
    return cli.main(["serve", "--port", str(free_port()), "--database-url", f"sqlite:///{database}", *options])


def test_a_missing_media_directory_stops_serve_before_it_listens(tmp_path, capsys, served):
    database = tmp_path / "sessions.db"
    assert serve(database, "--media-storage", "/does/not/exist") == 1
    assert capsys.readouterr().err == (
        "agentos-sessions: cannot use the media storage: the media directory /does/not/exist does not exist\n"
    )
    assert (served, database.exists()) == ([], False)  # not served, not even migrated


def test_a_file_for_the_media_directory_stops_serve(tmp_path, capsys, served):
    (tmp_path / "a-file").write_bytes(b"")
    assert serve(tmp_path / "sessions.db", "--media-storage", f"file://{tmp_path}/a-file") == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: cannot use the media storage: the media directory {tmp_path}/a-file does not exist\n"
    )
    assert served == []


def test_a_databases_own_missing_media_directory_stops_serve(tmp_path, capsys, monkeypatch, served):
    database = tmp_path / "sessions.db"
    missing = tmp_path / "missing"
    databases = {"main": {"url": f"sqlite:///{database}", "media_storage": f"file://{missing}"}}
    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", json.dumps(databases))
    assert cli.main(["serve", "--port", str(free_port())]) == 1
    assert capsys.readouterr().err == (
        f"agentos-sessions: cannot use the media storage: the media directory {missing} does not exist\n"
    )
    assert (served, database.exists()) == ([], False)


def test_the_flags_media_directory_wins_over_a_databases_own_missing_one(tmp_path, capsys, monkeypatch, served):
    database = tmp_path / "sessions.db"
    media = tmp_path / "media"
    media.mkdir()
    databases = {"main": {"url": f"sqlite:///{database}", "media_storage": f"file://{tmp_path}/missing"}}
    monkeypatch.setenv("AGENTOS_SESSIONS_DATABASES", json.dumps(databases))
    port = free_port()
    assert cli.main(["serve", "--port", str(port), "--media-storage", str(media)]) == 0
    assert capsys.readouterr().err == ""
    assert served == [{"host": "127.0.0.1", "port": port, "workers": 1, "access_log": True}]
    assert database.exists()  # migrated before serving


def test_a_usable_media_directory_lets_serve_go_on(tmp_path, capsys, monkeypatch, served):
    media = tmp_path / "media"
    media.mkdir()
    monkeypatch.setenv("AGENTOS_SESSIONS_MEDIA_STORAGE", f"file://{media}")
    assert serve(tmp_path / "sessions.db") == 0
    assert (capsys.readouterr().err, len(served)) == ("", 1)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://media", "--media-storage: ftp:// is not a media storage; use file:///path, s3://bucket or gs://bucket"),
        (
            "s3://media-bucket/path",
            "--media-storage: give the bucket alone and the rest as query options "
            "(prefix=..., as agno's arguments): 's3://media-bucket/path'",
        ),
        (
            "gs://media-bucket?region=eu",
            "--media-storage: unknown options ['region'] for gs://; "
            "known: credentials_path, prefix, presigned_url_expiry, project, public",
        ),
        (
            "file:///srv/media?x=1",
            "--media-storage: a file URL names a directory of this machine, as file:///srv/media: 'file:///srv/media?x=1'",
        ),
        ("", "--media-storage: empty; unset it for no media storage"),
        (
            "s3://media-bucket?region=eu-west-1&region=us-east-1",
            "--media-storage: options given more than once: ['region']",
        ),
    ],
)
def test_a_bad_media_storage_url_is_a_configuration_error(tmp_path, capsys, served, url, message):
    database = tmp_path / "sessions.db"
    assert serve(database, "--media-storage", url) == 2
    assert capsys.readouterr().err == f"agentos-sessions: {message}\n"
    assert (served, database.exists()) == ([], False)


def test_a_bad_media_storage_variable_is_a_configuration_error(tmp_path, capsys, monkeypatch, served):
    monkeypatch.setenv("AGENTOS_SESSIONS_MEDIA_STORAGE", "s3://media-bucket?presigned_url_expiry=0")
    assert serve(tmp_path / "sessions.db") == 2
    assert capsys.readouterr().err == (
        "agentos-sessions: AGENTOS_SESSIONS_MEDIA_STORAGE: presigned_url_expiry must be 1 to 604800 seconds, not '0'\n"
    )
    assert served == []


@pytest.mark.slow
def test_an_s3_bucket_that_does_not_exist_stops_serve_and_one_that_does_lets_it_go_on(
    tmp_path, capsys, monkeypatch, served
):
    for name, value in S3_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with moto_s3(tmp_path) as endpoint:
        storage = f"s3://{{bucket}}?endpoint_url={endpoint}&region={S3_REGION}"
        missing_database = tmp_path / "missing.db"
        assert serve(missing_database, "--media-storage", storage.format(bucket="missing-bucket")) == 1
        assert capsys.readouterr().err == (
            "agentos-sessions: cannot use the media storage: the bucket s3://missing-bucket does not exist\n"
        )
        assert (served, missing_database.exists()) == ([], False)

        boto3.client("s3", endpoint_url=endpoint, region_name=S3_REGION).create_bucket(Bucket="media-bucket")
        assert serve(tmp_path / "sessions.db", "--media-storage", storage.format(bucket="media-bucket")) == 0
        assert (capsys.readouterr().err, len(served)) == ("", 1)
