"""``agentos-sessions prune``: stale sessions deleted with their runs (and media), in batches."""

from __future__ import annotations

import pytest

from agentos_sessions import cli
from agentos_sessions.persistence import store
from agentos_sessions.settings import agno_db_id
from tests.api.helpers import add_run, stored_runs, stored_session

pytestmark = pytest.mark.pooler

DAY = 86_400


@pytest.fixture
def prune(database_settings, monkeypatch, capsys):
    """Run ``agentos-sessions prune`` on the test database: (exit code, stdout, stderr)."""
    monkeypatch.delenv("AGENTOS_SESSIONS_MEDIA_STORAGE", raising=False)
    if database_settings.db_schema:
        monkeypatch.setenv("AGENTOS_SESSIONS_DB_SCHEMA", database_settings.db_schema)

    def run(*options: str) -> tuple[int, str, str]:
        code = cli.main(["prune", "--database-url", database_settings.url, *options])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def aged(client, database):
    """Sessions updated 40, 35, 20 and 1 days ago (old-1 and old-2 with two runs each); old-3 a
    team's, of bob's; one never updated, created 50 days ago."""
    now = store.now()
    ages = {"old-1": 40, "old-2": 35, "old-3": 31, "recent": 20, "fresh": 1}
    for session_id, days in ages.items():
        kind = "team" if session_id == "old-3" else "agent"
        body = {"session_id": session_id, "user_id": "bob" if session_id == "old-3" else "alice", f"{kind}_id": "c"}
        assert client.post("/sessions", params={"type": kind}, json=body).status_code == 201
        _set_times(database, session_id, created_at=now - days * DAY, updated_at=now - days * DAY)
    assert client.post("/sessions", json={"session_id": "never-updated"}).status_code == 201
    _set_times(database, "never-updated", created_at=now - 50 * DAY, updated_at=None)
    for session_id in ("old-1", "old-2"):
        for index in range(2):
            add_run(database, session_id, f"{session_id}-r{index}", index, created_at=now - 40 * DAY)
    return ages


def _set_times(database, session_id, **times):
    sessions = database.models.sessions
    with database.unit_of_work() as db:
        db.execute(sessions.update().where(sessions.c.session_id == session_id).values(**times))


def _left(database) -> list[str]:
    return sorted(
        sid
        for sid in ("old-1", "old-2", "old-3", "recent", "fresh", "never-updated")
        if stored_session(database, sid) is not None
    )


def test_a_dry_run_counts_and_deletes_nothing(prune, aged, database, db_id):
    assert prune("--older-than", "30d", "--dry-run") == (0, _dry(db_id, 4, 4), "")
    assert _left(database) == ["fresh", "never-updated", "old-1", "old-2", "old-3", "recent"]


def _dry(db_id, sessions, runs) -> str:
    return f"agentos-sessions prune: database {db_id!r}: would delete {sessions} sessions ({runs} runs)\n"


@pytest.fixture
def db_id(database_settings) -> str:
    """The id the command gives the test database (agno's, from its URL)."""
    return agno_db_id(database_settings.url)


def test_stale_sessions_go_with_their_runs_in_batches(prune, aged, database, db_id):
    code, out, err = prune("--older-than", "30d", "--batch-size", "3")
    assert (code, out, err) == (
        0,
        f"agentos-sessions prune: database {db_id!r}: deleted 4 sessions (4 runs)\n",
        "",
    )
    assert _left(database) == ["fresh", "recent"]
    assert (stored_runs(database, "old-1"), stored_runs(database, "old-2")) == ([], [])


def test_filters_narrow_what_is_pruned(prune, aged, database):
    assert prune("--older-than", "30d", "--user-id", "bob")[0] == 0
    assert _left(database) == ["fresh", "never-updated", "old-1", "old-2", "recent"]
    assert prune("--older-than", "36d", "--type", "agent", "--component-id", "c")[0] == 0
    assert _left(database) == ["fresh", "never-updated", "old-2", "recent"]


@pytest.mark.parametrize(
    ("age", "message"),
    [("30", "'30'"), ("0d", "'0d'"), ("3y", "'3y'"), ("-1d", "'-1d'")],
)
def test_an_age_that_is_not_one_is_a_usage_error(prune, age, message, capsys):
    with pytest.raises(SystemExit) as exited:
        prune(f"--older-than={age}")
    assert exited.value.code == 2
    assert f"must be a number and a unit (s, m, h, d, w), as 30d, not {message}" in capsys.readouterr().err


def test_delete_media_without_a_media_storage_is_a_configuration_error(prune, aged, database, db_id):
    code, out, err = prune("--older-than", "30d", "--delete-media")
    assert (code, out) == (2, "")
    assert err == (
        f"agentos-sessions: --delete-media: no media storage is configured for {db_id!r} "
        "(AGENTOS_SESSIONS_MEDIA_STORAGE, or media_storage in AGENTOS_SESSIONS_DATABASES)\n"
    )
    assert len(_left(database)) == 6


def test_delete_media_deletes_the_pruned_sessions_objects(prune, aged, database, db_id, tmp_path, monkeypatch):
    media = tmp_path / "media"
    media.mkdir()
    for name in ("old.png", "recent.png"):
        (media / name).write_bytes(b"\x89PNG")
        (media / f"{name}.meta.json").write_text("{}")
    for session_id, name in (("old-1", "old.png"), ("recent", "recent.png")):
        reference = {
            "media_id": name,
            "storage_key": name,
            "session_id": session_id,
            "storage_backend": "local",
            "bucket": str(media.resolve()),
        }
        add_run(database, session_id, f"{session_id}-image", 9, created_at=1, images=[{"media_reference": reference}])
    monkeypatch.setenv("AGENTOS_SESSIONS_MEDIA_STORAGE", f"file://{media}")
    code, out, _ = prune("--older-than", "30d", "--delete-media")
    assert (code, out) == (
        0,
        f"agentos-sessions prune: database {db_id!r}: deleted 4 sessions (5 runs, 1 media objects)\n",
    )
    assert sorted(path.name for path in media.iterdir()) == ["recent.png", "recent.png.meta.json"]
