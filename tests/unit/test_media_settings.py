"""Media storage settings: the URL of each backend, its options and their defaults, every refusal
with its message, and which storage each database gets from the flag, its own entry and the
environment."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from agentos_sessions.cli import settings_from
from agentos_sessions.settings import (
    DatabaseSettings,
    MediaStorageSettings,
    Settings,
    SettingsError,
    agno_db_id,
)

VARIABLE = "AGENTOS_SESSIONS_MEDIA_STORAGE"

FILE_URL = "SOURCE: a file URL names a directory of this machine, as file:///srv/media: "


def parsed(value: str) -> MediaStorageSettings:
    return MediaStorageSettings.from_url(value, source="SOURCE")


def refusal(value: str) -> str:
    with pytest.raises(SettingsError) as refused:
        parsed(value)
    return str(refused.value)


# --- local directories ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["/srv/media", "file:///srv/media", "FILE:///srv/media", "  file:///srv/media  "])
def test_a_local_directory_is_a_path_or_a_file_url_with_no_prefix(value):
    assert parsed(value) == MediaStorageSettings(
        backend="local",
        location="/srv/media",
        prefix="",
        region=None,
        endpoint_url=None,
        acl=None,
        project=None,
        credentials_path=None,
        public=False,
        presigned_url_expiry=3600,
    )


def test_a_local_directorys_bucket_is_its_resolved_absolute_path(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path)
    assert [
        parsed("media").bucket,
        parsed("./media/../media").bucket,
        parsed("link").bucket,
        parsed(f"file://{tmp_path}/link").bucket,
        parsed(f"file://localhost{tmp_path}/link").bucket,
        parsed(f"file://{tmp_path}/re%61l").bucket,
    ] == [
        str(tmp_path.resolve() / "media"),
        str(tmp_path.resolve() / "media"),
        str(tmp_path.resolve() / "real"),
        str(tmp_path.resolve() / "real"),
        str(tmp_path.resolve() / "real"),
        str(tmp_path.resolve() / "real"),
    ]


def test_a_local_directorys_location_is_kept_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parsed("media").location == "media"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "SOURCE: empty; unset it for no media storage"),
        ("   ", "SOURCE: empty; unset it for no media storage"),
        ("file://", f"{FILE_URL}'file://'"),
        ("file:///srv/media?mode=0700", f"{FILE_URL}'file:///srv/media?mode=0700'"),
        ("file://media", f"{FILE_URL}'file://media'"),
        ("file://host.example/srv/media", f"{FILE_URL}'file://host.example/srv/media'"),
        ("/srv/media#top", "SOURCE: a local directory takes no options: '/srv/media#top'"),
        ("/srv/media?x", "SOURCE: a local directory takes no options: '/srv/media?x'"),
    ],
)
def test_a_bad_local_directory_is_refused_with_its_message(value, message):
    assert refusal(value) == message


# --- S3 ---------------------------------------------------------------------------------------


def test_an_s3_bucket_alone_has_agnos_defaults():
    assert parsed("s3://media-bucket") == MediaStorageSettings(
        backend="s3",
        location="media-bucket",
        prefix="agno/media/",
        region=None,
        endpoint_url=None,
        acl=None,
        project=None,
        credentials_path=None,
        public=False,
        presigned_url_expiry=3600,
    )
    assert parsed("s3://media-bucket").bucket == "media-bucket"


def test_an_s3_bucket_takes_every_option_of_agnos_s3_media_storage():
    url = (
        "S3://media.bucket-1/?region=eu-west-1&endpoint_url=http%3A%2F%2Fminio%3A9000&prefix=runs/media/"
        "&acl=public-read&presigned_url_expiry=604800"
    )
    assert parsed(url) == MediaStorageSettings(
        backend="s3",
        location="media.bucket-1",
        prefix="runs/media/",
        region="eu-west-1",
        endpoint_url="http://minio:9000",
        acl="public-read",
        presigned_url_expiry=604800,
    )


def test_empty_s3_options_are_unset_but_an_empty_prefix_is_kept():
    assert parsed("s3://media-bucket?region=&endpoint_url=&acl=&prefix=") == MediaStorageSettings(
        backend="s3", location="media-bucket", prefix=""
    )


@pytest.mark.parametrize("endpoint", ["https://s3.example.com", "https://s3.example.com/", "http://127.0.0.1:9000"])
def test_an_s3_endpoint_is_a_scheme_host_and_port(endpoint):
    assert parsed(f"s3://media-bucket?endpoint_url={endpoint}").endpoint_url == endpoint


@pytest.mark.parametrize("expiry", ["1", "3600", "604800"])
def test_a_signed_urls_lifetime_is_up_to_seven_days(expiry):
    assert parsed(f"s3://media-bucket?presigned_url_expiry={expiry}").presigned_url_expiry == int(expiry)


# --- GCS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["gs", "gcs", "GS"])
def test_a_gcs_bucket_alone_has_agnos_defaults(scheme):
    assert parsed(f"{scheme}://media-bucket") == MediaStorageSettings(
        backend="gcs",
        location="media-bucket",
        prefix="agno/media/",
        region=None,
        endpoint_url=None,
        acl=None,
        project=None,
        credentials_path=None,
        public=False,
        presigned_url_expiry=3600,
    )


def test_a_gcs_bucket_takes_every_option_of_agnos_gcs_media_storage():
    url = (
        "gs://media-bucket?project=my-project&credentials_path=%2Fetc%2Fgcs%2Fkey.json&public=true"
        "&presigned_url_expiry=60&prefix=media/"
    )
    assert parsed(url) == MediaStorageSettings(
        backend="gcs",
        location="media-bucket",
        prefix="media/",
        project="my-project",
        credentials_path="/etc/gcs/key.json",
        public=True,
        presigned_url_expiry=60,
    )


@pytest.mark.parametrize(
    ("value", "public"),
    [
        ("1", True),
        ("yes", True),
        ("ON", True),
        ("True", True),
        ("0", False),
        ("no", False),
        ("off", False),
        ("", False),
    ],
)
def test_public_is_a_flag(value, public):
    assert parsed(f"gs://media-bucket?public={value}").public is public


def test_empty_gcs_options_are_unset():
    assert parsed("gs://media-bucket?project=&credentials_path=") == MediaStorageSettings(
        backend="gcs", location="media-bucket"
    )


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://media", "SOURCE: http:// is not a media storage; use file:///path, s3://bucket or gs://bucket"),
        ("az://media", "SOURCE: az:// is not a media storage; use file:///path, s3://bucket or gs://bucket"),
        (
            "s3://media-bucket/media",
            "SOURCE: give the bucket alone and the rest as query options (prefix=..., as agno's arguments): "
            "'s3://media-bucket/media'",
        ),
        (
            "gs://media-bucket#part",
            "SOURCE: give the bucket alone and the rest as query options (prefix=..., as agno's arguments): "
            "'gs://media-bucket#part'",
        ),
        (
            "s3://key:secret@media-bucket",
            "SOURCE: give the bucket alone and the rest as query options (prefix=..., as agno's arguments): "
            "'s3://key:secret@media-bucket'",
        ),
        ("s3://", "SOURCE: '' is not a bucket name"),
        ("s3://ab", "SOURCE: 'ab' is not a bucket name"),
        ("s3://Media-Bucket", "SOURCE: 'Media-Bucket' is not a bucket name"),
        ("gs://media-bucket:443", "SOURCE: 'media-bucket:443' is not a bucket name"),
        ("s3://-media", "SOURCE: '-media' is not a bucket name"),
        (
            "s3://media-bucket?project=p&colour=blue",
            "SOURCE: unknown options ['colour', 'project'] for s3://; "
            "known: acl, endpoint_url, prefix, presigned_url_expiry, region",
        ),
        (
            "gs://media-bucket?region=eu",
            "SOURCE: unknown options ['region'] for gs://; "
            "known: credentials_path, prefix, presigned_url_expiry, project, public",
        ),
        (
            "gcs://media-bucket?acl=public-read",
            "SOURCE: unknown options ['acl'] for gcs://; "
            "known: credentials_path, prefix, presigned_url_expiry, project, public",
        ),
        ("gs://media-bucket?public=maybe", "SOURCE: public must be true or false, not 'maybe'"),
        (
            "s3://media-bucket?presigned_url_expiry=0",
            "SOURCE: presigned_url_expiry must be 1 to 604800 seconds, not '0'",
        ),
        (
            "s3://media-bucket?presigned_url_expiry=604801",
            "SOURCE: presigned_url_expiry must be 1 to 604800 seconds, not '604801'",
        ),
        (
            "gs://media-bucket?presigned_url_expiry=-1",
            "SOURCE: presigned_url_expiry must be 1 to 604800 seconds, not '-1'",
        ),
        (
            "gs://media-bucket?presigned_url_expiry=1h",
            "SOURCE: presigned_url_expiry must be 1 to 604800 seconds, not '1h'",
        ),
        ("s3://media-bucket?presigned_url_expiry=", "SOURCE: presigned_url_expiry must be 1 to 604800 seconds, not ''"),
        (
            "s3://media-bucket?endpoint_url=minio:9000",
            "SOURCE: endpoint_url must be http(s)://host[:port], not 'minio:9000'",
        ),
        (
            "s3://media-bucket?endpoint_url=ftp://minio",
            "SOURCE: endpoint_url must be http(s)://host[:port], not 'ftp://minio'",
        ),
        (
            "s3://media-bucket?endpoint_url=http://minio:9000/media",
            "SOURCE: endpoint_url must be http(s)://host[:port], not 'http://minio:9000/media'",
        ),
    ],
)
def test_a_bad_bucket_url_is_refused_with_its_message(value, message):
    assert refusal(value) == message


# --- which storage each database gets -------------------------------------------------------

SHARED = MediaStorageSettings(backend="s3", location="shared-bucket", region="eu-west-1")
OWN = MediaStorageSettings(backend="gcs", location="own-bucket")
FLAG = MediaStorageSettings(backend="local", location="/srv/flag", prefix="")


def databases_variable(**databases) -> str:
    return json.dumps(databases)


ENVIRONMENT = {
    VARIABLE: "s3://shared-bucket?region=eu-west-1",
    "AGENTOS_SESSIONS_DATABASES": databases_variable(
        own={"url": "sqlite:///own.db", "media_storage": "gs://own-bucket"},
        shared="sqlite:///shared.db",
        listed_without={"url": "sqlite:///listed.db", "media_storage": None},
    ),
}


def storages_of(settings: Settings) -> dict[str, MediaStorageSettings | None]:
    return {db_id: settings.media_storage_of(db_id) for db_id in settings.databases}


def test_a_databases_own_storage_wins_over_the_environments():
    settings = Settings.from_env(ENVIRONMENT)
    assert (settings.media_storage, storages_of(settings)) == (
        SHARED,
        {"own": OWN, "shared": SHARED, "listed_without": SHARED},
    )
    assert settings.databases["own"] == DatabaseSettings("sqlite:///own.db", media_storage=OWN)


def test_without_the_variable_only_a_database_with_its_own_storage_has_one():
    settings = Settings.from_env({**ENVIRONMENT, VARIABLE: ""})
    assert (settings.media_storage, storages_of(settings)) == (
        None,
        {"own": OWN, "shared": None, "listed_without": None},
    )


def test_the_single_database_of_the_environment_gets_the_variables_storage():
    settings = Settings.from_env({"AGENTOS_SESSIONS_DATABASE_URL": "sqlite:///one.db", VARIABLE: "/srv/media"})
    local = MediaStorageSettings(backend="local", location="/srv/media", prefix="")
    assert storages_of(settings) == {agno_db_id("sqlite:///one.db"): local}


def test_no_media_storage_is_the_default():
    settings = Settings.from_env({})
    assert (settings.media_storage, storages_of(settings)) == (None, {agno_db_id("sqlite:///agno.db"): None})


def test_the_flag_is_every_databases_storage():
    settings = settings_from(ENVIRONMENT, None, "file:///srv/flag")
    assert (settings.media_storage, storages_of(settings)) == (
        FLAG,
        {"own": FLAG, "shared": FLAG, "listed_without": FLAG},
    )
    # Only the media storage changed.
    assert settings.databases["own"] == replace(Settings.from_env(ENVIRONMENT).databases["own"], media_storage=None)


def test_without_the_flag_the_environment_and_each_databases_own_apply():
    assert storages_of(settings_from(ENVIRONMENT, None)) == {"own": OWN, "shared": SHARED, "listed_without": SHARED}
    assert storages_of(settings_from(ENVIRONMENT, None, None)) == storages_of(Settings.from_env(ENVIRONMENT))


def test_the_database_url_flag_replaces_the_databases_and_keeps_the_variables_storage():
    settings = settings_from(ENVIRONMENT, "sqlite:///flag.db")
    assert storages_of(settings) == {agno_db_id("sqlite:///flag.db"): SHARED}


def test_both_flags_give_the_one_database_the_flags_storage():
    settings = settings_from(ENVIRONMENT, "sqlite:///flag.db", "/srv/flag")
    assert storages_of(settings) == {agno_db_id("sqlite:///flag.db"): FLAG}


def test_a_bad_databases_own_storage_is_refused_even_with_the_flag():
    environment = {"AGENTOS_SESSIONS_DATABASES": databases_variable(main={"url": "sqlite:///m.db", "media_storage": 3})}
    with pytest.raises(SettingsError) as refused:
        settings_from(environment, None, "/srv/flag")
    assert str(refused.value) == "Database 'main': media_storage must be a URL string"


@pytest.mark.parametrize(
    ("environment", "flag", "message"),
    [
        (
            {VARIABLE: "ftp://media"},
            None,
            f"{VARIABLE}: ftp:// is not a media storage; use file:///path, s3://bucket or gs://bucket",
        ),
        ({VARIABLE: "  "}, None, f"{VARIABLE}: empty; unset it for no media storage"),
        (
            {},
            "s3://media-bucket?colour=blue",
            "--media-storage: unknown options ['colour'] for s3://; "
            "known: acl, endpoint_url, prefix, presigned_url_expiry, region",
        ),
        (
            {
                "AGENTOS_SESSIONS_DATABASES": databases_variable(
                    main={"url": "sqlite:///m.db", "media_storage": "s3://x"}
                )
            },
            None,
            "Database 'main': 'x' is not a bucket name",
        ),
        (
            {"AGENTOS_SESSIONS_DATABASES": databases_variable(main={"url": "sqlite:///m.db", "media_storage": ""})},
            None,
            "Database 'main': empty; unset it for no media storage",
        ),
        (
            {"AGENTOS_SESSIONS_DATABASES": databases_variable(main={"url": "sqlite:///m.db", "media_storage": ["/m"]})},
            None,
            "Database 'main': media_storage must be a URL string",
        ),
        (
            {"AGENTOS_SESSIONS_DATABASES": databases_variable(main={"url": "sqlite:///m.db", "media": "/m"})},
            None,
            "Database 'main': unknown keys ['media']",
        ),
    ],
)
def test_a_bad_media_storage_names_where_it_was_given(environment, flag, message):
    with pytest.raises(SettingsError) as refused:
        settings_from(environment, None, flag)
    assert str(refused.value) == message


def test_databases_with_the_same_storage_url_have_equal_settings():
    environment = {
        "AGENTOS_SESSIONS_DATABASES": databases_variable(
            a={"url": "sqlite:///a.db", "media_storage": "s3://media-bucket?region=eu-west-1"},
            b={"url": "sqlite:///b.db", "media_storage": "s3://media-bucket/?region=eu-west-1"},
        )
    }
    settings = Settings.from_env(environment)
    assert settings.media_storage_of("a") == settings.media_storage_of("b")
    assert hash(settings.media_storage_of("a")) == hash(settings.media_storage_of("b"))
