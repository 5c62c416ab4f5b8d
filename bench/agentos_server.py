"""AgentOS 3.1.10 as its users run it under uvicorn (run in AgentOS's own venv): on SqliteDb for a
sqlite:/// URL, on PostgresDb (schema ``ai``, its default, named explicitly) for a PostgreSQL one;
with MEDIA_DIR, serving the media agno offloaded there (LocalMediaStorage, as the agents had).

Usage: agentos_server.py DATABASE_URL PORT [WORKERS [MEDIA_DIR]]
"""

import os
import sys

import uvicorn


def make_app():
    from agno.os import AgentOS

    url = os.environ["BENCH_AGENTOS_DATABASE_URL"]
    if url.startswith("sqlite:///"):
        from agno.db.sqlite import SqliteDb

        db = SqliteDb(db_file=url.removeprefix("sqlite:///"), id="bench")
    else:
        from agno.db.postgres import PostgresDb

        # PostgresDb hands db_url to SQLAlchemy as it is: the URL names psycopg 3 (postgresql+psycopg).
        db = PostgresDb(db_url=url, db_schema="ai", id="bench")
    # The media routes answer 503 without a media storage. Given none, AgentOS looks for one on its
    # agents, and this AgentOS has no agents: so it is given here, as AgentOS's own argument.
    media_storage = None
    if media_dir := os.environ.get("BENCH_AGENTOS_MEDIA_DIR"):
        from agno.media.storage.local import LocalMediaStorage

        media_storage = LocalMediaStorage(base_path=media_dir)
    # telemetry=False: no launch report to agno's API from a benchmark (it is sent once, at start,
    # so it costs no request anything either way).
    return AgentOS(db=db, media_storage=media_storage, telemetry=False).get_app()


if __name__ == "__main__":
    url, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.environ["BENCH_AGENTOS_DATABASE_URL"] = url
    # Through the environment, as the URL: with workers, each builds its own app from it.
    if len(sys.argv) > 4:
        os.environ["BENCH_AGENTOS_MEDIA_DIR"] = sys.argv[4]
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    uvicorn.run(
        "agentos_server:make_app",
        factory=True,
        workers=workers,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )
