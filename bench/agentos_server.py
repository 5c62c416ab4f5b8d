"""AgentOS 3.1.10 with SqliteDb, as its users run it: one uvicorn worker (run in AgentOS's own venv)."""

import sys

import uvicorn
from agno.db.sqlite import SqliteDb
from agno.os import AgentOS

if __name__ == "__main__":
    db_file, port = sys.argv[1], int(sys.argv[2])
    app = AgentOS(db=SqliteDb(db_file=db_file, id="bench")).get_app()
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
