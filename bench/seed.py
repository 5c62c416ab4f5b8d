"""The benchmark's data set, written straight into agno's tables (the layout both servers read).

10,000 sessions (and bench-long, below) over 8 users and the three session types; every tenth
(bench-00000, bench-00010, ...) carries 20 runs with realistic messages (a system prompt, the user's
question, a ~1.5 KB answer, metrics: ~5 KB a run), so every page of the list has some.
Half the sessions have a stored name; the others' names are derived from their first run.
``run_scale`` multiplies the size of each answer, to see how the servers cope as runs grow.
The same rows, the same JSON, go into a SQLite file (:func:`seed`) or a PostgreSQL database
(:func:`seed_postgresql`, in agno's PostgresDb's default schema, ``ai``).
Given an ``image`` (an image agno offloaded to a media storage, as a run holds it: see
offload_media.py), the first run of bench-00000 (an agent session) carries it, in its input and
its output images, as a run of an agent with a media_storage does: the media operation fetches it.
One more agent session, bench-long, carries 10,000 runs from the same generator (~5 KB each at run
scale 1, ~50 MB in all), for the paging operations: a page of it against a page of a 20-run session,
and all of it. It is the oldest session and has a stored name, so the list operations (the newest
pages) never meet it.

The prune benchmark (prune.py) has a data set of its own (:func:`seed_prune`,
:func:`seed_prune_postgresql`): STALE_SESSIONS sessions last updated STALE_AGE_DAYS days ago, every
tenth with STALE_RUNS runs, which `agentos-sessions prune --older-than 30d` deletes, among the
10,000 sessions above (without bench-long), last updated in the past few hours, which it keeps.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, insert
from sqlalchemy.engine import make_url

from agentos_sessions.persistence import schema as migrations
from agentos_sessions.persistence.models import DEFAULT_PG_SCHEMA, models_for

SESSIONS = 10_000
RUNS_EVERY = 10  # every tenth session has runs
RUNS_PER_SESSION = 20
USERS = [f"user-{n}" for n in range(8)]
T0 = 1_750_000_000
# The session whose first run carries the offloaded image (an agent session with runs: its run
# input has images, where a workflow run's input is text).
MEDIA_SESSION = "bench-00000"
# The long session (an agent session, as the paging operations read it) and its runs.
LONG_SESSION = "bench-long"
LONG_RUNS = 10_000
# Its runs go in by this many at a time: all 10,000 at once would hold ~50 MB of JSON (and
# several times that in Python objects) on top of the other sessions' runs.
LONG_BATCH = 1_000
# The prune benchmark's stale sessions (stale-000000, ...), and how many go in at a time.
STALE_SESSIONS = 100_000
STALE_AGE_DAYS = 60
STALE_RUNS = 2
STALE_BATCH = 10_000


def session_id(n: int) -> str:
    return f"bench-{n:05d}"


def _run(session: str, kind: str, user: str, index: int, rng: random.Random, run_scale: int) -> dict:
    created = T0 + index * 60
    words = ("agents", "sessions", "storage", "latency", "tokens", "context")
    answer = " ".join(rng.choice(words) for _ in range(220 * run_scale))
    messages = [
        {
            "id": f"{session}-{index}-s",
            "content": "You are a helpful assistant. " * 20,
            "from_history": False,
            "stop_after_tool_call": False,
            "role": "system",
            "created_at": created,
        },
        {
            "id": f"{session}-{index}-u",
            "content": f"Question {index} about {session}?",
            "from_history": False,
            "stop_after_tool_call": False,
            "role": "user",
            "created_at": created,
        },
        {
            "id": f"{session}-{index}-a",
            "content": answer,
            "from_history": False,
            "stop_after_tool_call": False,
            "role": "assistant",
            "metrics": {"input_tokens": 420, "output_tokens": 310, "total_tokens": 730},
            "created_at": created + 2,
        },
    ]
    run = {
        "run_id": f"{session}-run-{index}",
        "session_id": session,
        "user_id": user,
        "content": answer,
        "content_type": "str",
        "model": "gpt-4o-mini",
        "model_provider": "OpenAI",
        "created_at": created,
        "status": "COMPLETED",
        "messages": messages,
        "metrics": {"input_tokens": 420, "output_tokens": 310, "total_tokens": 730, "duration": 2.1},
        "input": {"input_content": f"Question {index} about {session}?"},
    }
    run[f"{kind}_id"] = f"{kind}-1"
    if kind == "workflow":
        # A workflow run has its input as text, step results and per-step metrics, no messages.
        del run["messages"]
        run["input"] = f"Question {index} about {session}?"
        run["metrics"] = {"duration": 2.1, "steps": {}}
        run["step_results"] = [{"step_name": "answer", "content": answer}]
    return run


def seed(path: Path, run_scale: int = 1, image: dict | None = None) -> None:
    """Create the SQLite file ``path`` with agno's tables and the benchmark data set."""
    path.unlink(missing_ok=True)
    # json.dumps with its defaults is what agno's SqliteDb writes, byte for byte.
    _fill(create_engine(f"sqlite:///{path}", json_serializer=json.dumps), None, run_scale, image)


def seed_postgresql(url: str, run_scale: int = 1, schema: str = DEFAULT_PG_SCHEMA, image: dict | None = None) -> None:
    """Fill the empty PostgreSQL database at ``url`` with the same tables and rows, in ``schema``,
    then VACUUM ANALYZE it, so that the planner has statistics from the start."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), json_serializer=json.dumps)
    _fill(engine, schema, run_scale, image)
    autocommit = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with autocommit.connect() as db:
        db.exec_driver_sql("VACUUM ANALYZE")
    autocommit.dispose()


def _fill(engine: Engine, schema: str | None, run_scale: int, image: dict | None) -> None:
    models = models_for("agno_sessions", "agno_runs", schema)
    with engine.begin() as db:
        # The tables as agno creates them (revision 0001 is agno's DDL): our server migrates on
        # to its own indexes when it starts; AgentOS serves agno's layout.
        migrations.upgrade(db, models, "0001")
        sessions, runs = _rows(run_scale, image)
        db.execute(insert(models.sessions), sessions)
        db.execute(insert(models.runs), runs)
        db.execute(insert(models.sessions), [_long_session()])
        for batch in _long_runs(run_scale):
            db.execute(insert(models.runs), batch)
    engine.dispose()


def _session_row(session_id: str, kind: str, user: str, data: dict, metadata: dict, stamp: int) -> dict:
    """A session's columns: one agent, team or workflow of its kind, created and updated at ``stamp``."""
    return {
        "session_id": session_id,
        "session_type": kind,
        "agent_id": f"{kind}-1" if kind == "agent" else None,
        "team_id": f"{kind}-1" if kind == "team" else None,
        "workflow_id": f"{kind}-1" if kind == "workflow" else None,
        "user_id": user,
        "session_data": data,
        "metadata": metadata,
        "created_at": stamp,
        "updated_at": stamp,
    }


def _rows(run_scale: int, image: dict | None = None) -> tuple[list[dict], list[dict]]:
    """The sessions and runs, as column values (JSON columns as Python values)."""
    rng = random.Random(7)
    kinds = ("agent", "team", "workflow")
    sessions, runs = [], []
    for n in range(SESSIONS):
        sid, kind, user = session_id(n), kinds[n % 3], USERS[n % len(USERS)]
        named = n % 4 < 2
        data = {"session_state": {"step": n % 7, "topic": "benchmark"}}
        if named:
            data["session_name"] = f"Benchmark session {n}"
        sessions.append(_session_row(sid, kind, user, data, {"source": "bench", "n": n}, T0 + n))
        if n % RUNS_EVERY == 0:
            for index in range(RUNS_PER_SESSION):
                run = _run(sid, kind, user, index, rng, run_scale)
                if image is not None and sid == MEDIA_SESSION and index == 0:
                    # Where agno 3.1.10 keeps a run's images (RunInput.to_dict, RunOutput.to_dict):
                    # the reference alone, the bytes being in the media storage.
                    run["input"]["images"] = [image]
                    run["images"] = [image]
                runs.append(_run_row(run, kind, index))
    return sessions, runs


def _run_row(run: dict, kind: str, index: int) -> dict:
    """A run's row: its columns, which agno writes from the run, and the run as run_data."""
    return {
        "run_id": run["run_id"],
        "session_id": run["session_id"],
        "run_type": kind,
        "agent_id": run.get("agent_id"),
        "team_id": run.get("team_id"),
        "workflow_id": run.get("workflow_id"),
        "user_id": run["user_id"],
        "parent_run_id": None,
        "status": "COMPLETED",
        "run_index": index,
        "run_data": run,
        "created_at": run["created_at"],
        "updated_at": run["created_at"],
    }


def _long_session() -> dict:
    """bench-long's row. Created (and updated) before every other session: the list operations
    sort newest first and read the first pages, so they never meet it; and its name is stored,
    so no list derives it from its runs."""
    return {
        "session_id": LONG_SESSION,
        "session_type": "agent",
        "agent_id": "agent-1",
        "team_id": None,
        "workflow_id": None,
        "user_id": USERS[0],
        "session_data": {"session_state": {"step": 0, "topic": "benchmark"}, "session_name": "Long session"},
        "metadata": {"source": "bench", "n": "long"},
        "created_at": T0 - 1,
        "updated_at": T0 - 1,
    }


def _long_runs(run_scale: int):
    """bench-long's runs, LONG_BATCH rows at a time. Their own random generator: the other
    sessions' rows stay what they were before bench-long was added."""
    rng = random.Random(11)
    batch = []
    for index in range(LONG_RUNS):
        batch.append(_run_row(_run(LONG_SESSION, "agent", USERS[0], index, rng, run_scale), "agent", index))
        if len(batch) == LONG_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def seed_prune(path: Path, stale: int = STALE_SESSIONS) -> None:
    """Create the SQLite file ``path`` with agno's tables and the prune benchmark's data set."""
    path.unlink(missing_ok=True)
    _fill_prune(create_engine(f"sqlite:///{path}", json_serializer=json.dumps), None, stale)


def seed_prune_postgresql(url: str, schema: str = DEFAULT_PG_SCHEMA, stale: int = STALE_SESSIONS) -> None:
    """The same in the empty PostgreSQL database at ``url``, then VACUUM ANALYZEd (as seed_postgresql)."""
    engine = create_engine(make_url(url).set(drivername="postgresql+psycopg"), json_serializer=json.dumps)
    _fill_prune(engine, schema, stale)
    autocommit = create_engine(engine.url, isolation_level="AUTOCOMMIT")
    with autocommit.connect() as db:
        db.exec_driver_sql("VACUUM ANALYZE")
    autocommit.dispose()


def _fill_prune(engine: Engine, schema: str | None, stale: int) -> None:
    models = models_for("agno_sessions", "agno_runs", schema)
    # Timestamps relative to now: prune's cutoff is (now - its age).
    now = int(time.time())
    with engine.begin() as db:
        migrations.upgrade(db, models, "0001")
        # The usual 10,000 sessions, as fresh ones: last updated a second apart, the newest now.
        sessions, runs = _rows(1)
        for n, session in enumerate(sessions):
            session["created_at"] = session["updated_at"] = now - (SESSIONS - n)
        db.execute(insert(models.sessions), sessions)
        db.execute(insert(models.runs), runs)
        for sessions, runs in _stale_rows(stale, now - STALE_AGE_DAYS * 86_400):
            db.execute(insert(models.sessions), sessions)
            if runs:
                db.execute(insert(models.runs), runs)
    engine.dispose()


def _stale_rows(count: int, newest: int):
    """The stale sessions and their runs, STALE_BATCH sessions at a time: sessions like _rows's
    (types, users, names, state), last updated a second apart, the newest at ``newest``; every
    RUNS_EVERY-th with STALE_RUNS runs of the usual ~5 KB. Their own random generator."""
    rng = random.Random(13)
    kinds = ("agent", "team", "workflow")
    sessions, runs = [], []
    for n in range(count):
        sid, kind, user = f"stale-{n:06d}", kinds[n % 3], USERS[n % len(USERS)]
        data = {"session_state": {"step": n % 7, "topic": "stale"}}
        if n % 4 < 2:
            data["session_name"] = f"Stale session {n}"
        updated = newest - (count - n)
        sessions.append(_session_row(sid, kind, user, data, {"source": "bench-prune", "n": n}, updated))
        if n % RUNS_EVERY == 0:
            runs += [_run_row(_run(sid, kind, user, index, rng, 1), kind, index) for index in range(STALE_RUNS)]
        if len(sessions) == STALE_BATCH:
            yield sessions, runs
            sessions, runs = [], []
    if sessions:
        yield sessions, runs
