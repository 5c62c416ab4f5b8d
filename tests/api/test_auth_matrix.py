"""Tries to get in: every operation x every way of getting credentials wrong.

The server here runs as hardened as it can be configured: JWTs verified with an RSA public key
(RS256), an audience, and user isolation. Each attempt must get the right status and body and
leave the database exactly as it was.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import SecuritySettings, Settings
from tests.api.helpers import add_run
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.tokens import ALL_SCOPES, bearer, ec_key, public_pem, rsa_key, tampered, token, unsigned

AUDIENCE = "agentos-sessions-test"
READ, WRITE, DELETE = "sessions:read", "sessions:write", "sessions:delete"

# Each operation aimed at bob's session "bob-1" (the create tries to take its id), with the
# scope it needs. `?user_id=bob` is a try at acting for bob that isolation must ignore.
OPERATIONS = {
    "get_sessions": ("GET", "/sessions?user_id=bob", None, READ),
    "create_session": ("POST", "/sessions", {"session_id": "bob-1", "session_name": "mine", "user_id": "bob"}, WRITE),
    "delete_sessions": (
        "DELETE",
        "/sessions?user_id=bob",
        {"session_ids": ["bob-1"], "session_types": ["agent"]},
        DELETE,
    ),
    "get_session_by_id": ("GET", "/sessions/bob-1?user_id=bob", None, READ),
    "delete_session": ("DELETE", "/sessions/bob-1?user_id=bob", None, DELETE),
    "update_session": ("PATCH", "/sessions/bob-1?user_id=bob", {"session_state": {"pwned": True}}, WRITE),
    "get_session_runs": ("GET", "/sessions/bob-1/runs?user_id=bob", None, READ),
    "get_session_run_previews": ("GET", "/sessions/bob-1/run-previews?user_id=bob", None, READ),
    "get_session_run": ("GET", "/sessions/bob-1/runs/run-1?user_id=bob", None, READ),
    "rename_session": ("POST", "/sessions/bob-1/rename?user_id=bob", {"session_name": "pwned"}, WRITE),
}


def _rs256(sub="alice", scopes=ALL_SCOPES, **claims) -> str:
    claims.setdefault("aud", AUDIENCE)
    return token(sub, scopes, key=rsa_key(), algorithm="RS256", **claims)


def _hs256_with_public_key() -> str:
    """The algorithm-confusion token: HS256, "signed" with the server's public key as the secret."""

    def part(data) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=")

    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(json.loads(_claims_of(_rs256())))
    signature = hmac.new(public_pem(rsa_key()).encode(), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + base64.urlsafe_b64encode(signature).rstrip(b"=")).decode()


def _claims_of(signed: str) -> str:
    payload = signed.split(".")[1]
    return base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()


_OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)

# name -> (Authorization header or None, status, detail); None for the detail of a 403 means
# "the operation's own scope".
ATTACKS = {
    "no header": (None, 401, "Authorization header missing"),
    "empty header": ("", 401, "Authorization header missing"),
    "basic scheme": ("Basic YWxpY2U6c2VjcmV0", 401, "Invalid authentication token"),
    "bearer without token": ("Bearer", 401, "Invalid authentication token"),
    "two tokens": (lambda: f"Bearer {_rs256()} {_rs256()}", 401, "Invalid token: Invalid payload padding"),
    "not a token": ("Bearer sekrit", 401, "Invalid token: Not enough segments"),
    "wrong key": (
        lambda: f"Bearer {token('alice', ALL_SCOPES, key=_OTHER_RSA_KEY, algorithm='RS256', aud=AUDIENCE)}",
        401,
        "Invalid token: Signature verification failed",
    ),
    "expired token": (lambda: f"Bearer {_rs256(expires_in=-60)}", 401, "Token has expired"),
    "no expiry": (lambda: f"Bearer {_rs256(expires_in=None)}", 401, 'Invalid token: Token is missing the "exp" claim'),
    "not yet valid": (
        lambda: f"Bearer {_rs256(nbf=_later())}",
        401,
        "Invalid token: The token is not yet valid (nbf)",
    ),
    "bad signature (claims changed)": (
        lambda: f"Bearer {tampered(_rs256(scopes=[]), scopes=['agent_os:admin'], sub='bob')}",
        401,
        "Invalid token: Signature verification failed",
    ),
    "alg none": (lambda: f"Bearer {unsigned()}", 401, "Invalid token: The specified alg value is not allowed"),
    "alg HS256 keyed with the public key": (
        lambda: f"Bearer {_hs256_with_public_key()}",
        401,
        "Invalid token: The specified alg value is not allowed",
    ),
    "alg ES256 from another key": (
        lambda: f"Bearer {token('alice', ALL_SCOPES, key=ec_key(), algorithm='ES256', aud=AUDIENCE)}",
        401,
        "Invalid token: The specified alg value is not allowed",
    ),
    "wrong audience": (
        lambda: f"Bearer {_rs256(aud='another-service')}",
        401,
        "Invalid token audience - token not valid for this AgentOS instance",
    ),
    "no audience": (
        lambda: f"Bearer {token('alice', ALL_SCOPES, key=rsa_key(), algorithm='RS256')}",
        401,
        'Invalid token: Token is missing the "aud" claim',
    ),
    "no scopes": (lambda: f"Bearer {_rs256(scopes=None)}", 403, None),
    "scopes of other resources": (
        lambda: f"Bearer {_rs256(scopes=['agents:read', 'admin', 'sessions:*', 'agent-os:*', 'sessions:bob-1:read'])}",
        403,
        None,
    ),
    "no subject under isolation": (
        lambda: f"Bearer {_rs256(sub=None)}",
        403,
        "Authenticated request is missing a user identity",
    ),
}


def _later() -> int:
    return int(time.time()) + 3600


@contextlib.contextmanager
def hardened_server(directory):
    """A started server (RS256, audience, isolation) holding bob's session bob-1 and its run."""
    config = fresh_database(directory)
    security = SecuritySettings(
        jwt_verification_key=public_pem(rsa_key()), jwt_audience=(AUDIENCE,), user_isolation=True
    )
    with TestClient(create_app(Settings(databases={"main": config}, security=security))) as client:
        created = client.post(
            "/sessions", json={"session_id": "bob-1", "session_state": {"n": 1}}, headers=bearer(_rs256("bob"))
        )
        assert created.status_code == 201, created.text
        database = DirectDatabase(config)
        add_run(database, "bob-1", "run-1", 0, created_at=1_700_000_000, input={"input_content": "hi"})
        try:
            yield client, database
        finally:
            database.dispose()


@pytest.fixture(scope="module")
def hardened(tmp_path_factory):
    """One hardened server for the attacks of this module (none of which may change it)."""
    with hardened_server(tmp_path_factory.mktemp("matrix")) as served:
        yield served


def _call(client, operation: str, authorization: str | None):
    method, path, body, _scope = OPERATIONS[operation]
    headers = {} if authorization is None else {"Authorization": authorization}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_attack_is_refused_and_changes_nothing(hardened, operation, attack):
    client, database = hardened
    header, status, detail = ATTACKS[attack]
    before = database.snapshot()

    response = _call(client, operation, header() if callable(header) else header)

    scope = OPERATIONS[operation][3]
    expected = detail if detail is not None else f"Insufficient permissions. Required scope(s): {scope}"
    assert (response.status_code, response.json()) == (status, {"detail": expected})
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert database.snapshot() == before


@pytest.mark.parametrize("operation", OPERATIONS)
def test_missing_scope_is_refused_and_changes_nothing(hardened, operation):
    """Holding the other two scopes is not enough."""
    client, database = hardened
    needed = OPERATIONS[operation][3]
    before = database.snapshot()

    response = _call(client, operation, f"Bearer {_rs256(scopes=[s for s in ALL_SCOPES if s != needed])}")

    assert (response.status_code, response.json()) == (
        403,
        {"detail": f"Insufficient permissions. Required scope(s): {needed}"},
    )
    assert database.snapshot() == before


ANOTHER_USERS_SESSION = {
    "get_sessions": (200, None),
    "create_session": (
        409,
        "Could not create a session with the supplied session_id. "
        "Omit session_id to have one generated, or choose a different one.",
    ),
    "delete_sessions": (204, None),
    "get_session_by_id": (404, "Session with id 'bob-1' not found"),
    "delete_session": (404, "Session with id 'bob-1' not found"),
    "update_session": (404, "Session with id 'bob-1' not found"),
    "get_session_runs": (404, "Session with ID bob-1 not found"),
    "get_session_run_previews": (404, "Session with ID bob-1 not found"),
    "get_session_run": (404, "Session with ID bob-1 not found"),
    "rename_session": (404, "Session with id 'bob-1' not found"),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_another_users_token_reaches_nothing_of_bobs(hardened, operation):
    """alice, with every scope, aims at bob's session: she neither sees nor changes it."""
    client, database = hardened
    status, detail = ANOTHER_USERS_SESSION[operation]
    before = database.snapshot()

    response = _call(client, operation, f"Bearer {_rs256('alice')}")

    assert response.status_code == status, response.text
    if operation == "get_sessions":
        body = response.json()
        assert body["data"] == []
        assert {k: v for k, v in body["meta"].items() if k != "search_time_ms"} == {
            "page": 1,
            "limit": 20,
            "total_pages": 0,
            "total_count": 0,
        }
    elif detail is not None:
        assert response.json() == {"detail": detail}
    else:
        assert response.content == b""
    assert database.snapshot() == before


def test_the_owner_passes_every_operation(tmp_path):
    """The control: bob's own token does all that alice's could not."""
    with hardened_server(tmp_path) as (client, database):
        bob = bearer(_rs256("bob"))
        answers = {
            operation: client.request(method, path, json=body, headers=bob)
            for operation, (method, path, body, _scope) in OPERATIONS.items()
            if operation not in ("delete_session", "delete_sessions")
        }
        answers["delete_session"] = _call(client, "delete_session", bob["Authorization"])
        deleted = database.snapshot()
        answers["delete_sessions"] = _call(client, "delete_sessions", bob["Authorization"])

    assert {operation: response.status_code for operation, response in answers.items()} == {
        "get_sessions": 200,
        "create_session": 409,
        "get_session_by_id": 200,
        "update_session": 200,
        "get_session_runs": 200,
        "get_session_run_previews": 200,
        "get_session_run": 200,
        "rename_session": 200,
        "delete_session": 204,
        "delete_sessions": 204,
    }
    assert answers["get_sessions"].json()["meta"]["total_count"] == 1
    assert answers["create_session"].json() == {
        "detail": "Session with id 'bob-1' already exists. Use PATCH /sessions/bob-1 to update it."
    }
    assert answers["rename_session"].json()["session_name"] == "pwned"
    assert answers["rename_session"].json()["session_state"] == {"pwned": True}
    assert deleted == [[], []]
