"""AgentOS 3.1.10 with SqliteDb, as its users run it under uvicorn (run in AgentOS's own venv).

Usage: agentos_server.py DB_FILE PORT [WORKERS]
"""

import os
import sys

import uvicorn


def make_app():
    from agno.db.sqlite import SqliteDb
    from agno.os import AgentOS

    return AgentOS(db=SqliteDb(db_file=os.environ["BENCH_AGENTOS_DB_FILE"], id="bench")).get_app()


if __name__ == "__main__":
    db_file, port = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    os.environ["BENCH_AGENTOS_DB_FILE"] = db_file
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
