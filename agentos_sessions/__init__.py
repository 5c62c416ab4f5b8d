"""agentos-sessions: the sessions API of Agno's AgentOS, served from its OpenAPI 3.1 contract."""

import warnings

# Connexion 3.3 imports starlette.testclient (for its app.test_client()) when it is imported, and
# Starlette 1.x warns there that the client runs on httpx. Nothing here uses that client; unfiltered,
# the warning would open the output of every command and every process that imports the server.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    import connexion  # noqa: F401
