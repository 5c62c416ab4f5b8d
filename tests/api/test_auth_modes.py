"""Each way of turning authentication on, what passes it, and what stays open."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from agentos_sessions.app import create_app
from agentos_sessions.settings import SecuritySettings, Settings
from tests.databases import fresh_database
from tests.direct import DirectDatabase
from tests.tokens import bearer, ec_key, hs_secret, public_pem, rsa_key, token

KEY = "correct horse battery staple"


@pytest.fixture
def serve(tmp_path):
    """Start the app with the given security settings; yields (client, direct database)."""
    started = []

    def serve(security: SecuritySettings):
        config = fresh_database(tmp_path, f"sessions{len(started)}")
        client = TestClient(create_app(Settings(databases={"main": config}, security=security)))
        client.__enter__()
        database = DirectDatabase(config)
        started.append((client, database))
        return client, database

    yield serve
    for client, database in started:
        database.dispose()
        client.__exit__(None, None, None)


OPERATIONS = [
    ("GET", "/sessions", None),
    ("POST", "/sessions", {"session_id": "s2"}),
    ("DELETE", "/sessions", {"session_ids": ["s1"], "session_types": ["agent"]}),
    ("GET", "/sessions/s1", None),
    ("DELETE", "/sessions/s1", None),
    ("PATCH", "/sessions/s1", {"session_name": "changed"}),
    ("GET", "/sessions/s1/runs", None),
    ("GET", "/sessions/s1/run-previews", None),
    ("GET", "/sessions/s1/runs/r1", None),
    ("POST", "/sessions/s1/rename", {"session_name": "changed"}),
]


# --- security key ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_server(tmp_path_factory):
    """A server in security-key mode holding session s1, for refusals (which change nothing)."""
    config = fresh_database(tmp_path_factory.mktemp("key"))
    with TestClient(
        create_app(Settings(databases={"main": config}, security=SecuritySettings(security_key=KEY)))
    ) as client:
        assert client.post("/sessions", json={"session_id": "s1"}, headers=bearer(KEY)).status_code == 201
        database = DirectDatabase(config)
        yield client, database
        database.dispose()


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, "Authorization header required"),
        ("", "Authorization header required"),
        ("Basic Y29ycmVjdA==", "Invalid authentication token"),
        ("Bearer", "Invalid authentication token"),
        (KEY, "Invalid authentication token"),  # the key without its scheme
        ("Bearer wrong", "Invalid authentication token"),
        (f"Bearer {KEY[:-1]}", "Invalid authentication token"),
        (f"Bearer {KEY}x", "Invalid authentication token"),
        (f"Bearer {KEY.upper()}", "Invalid authentication token"),
        ("Bearer clé", "Invalid authentication token"),
    ],
)
@pytest.mark.parametrize(("method", "path", "body"), OPERATIONS)
def test_security_key_refuses_anything_but_the_key(key_server, method, path, body, authorization, detail):
    client, database = key_server
    before = database.snapshot()

    headers = {} if authorization is None else {"Authorization": authorization.encode("utf-8")}
    response = client.request(method, path, json=body, headers=headers)

    assert (response.status_code, response.json()) == (401, {"detail": detail})
    assert database.snapshot() == before


def test_security_key_opens_every_operation(serve):
    client, database = serve(SecuritySettings(security_key=KEY))
    assert client.post("/sessions", json={"session_id": "s1"}, headers=bearer(KEY)).status_code == 201
    # The scheme in any case, spaces around the key: as AgentOS accepts it.
    spellings = [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER   {KEY}  "]
    statuses = [
        client.request(method, path, json=body, headers={"Authorization": spellings[i % 3]}).status_code
        for i, (method, path, body) in enumerate(OPERATIONS)
    ]
    # After the bulk delete, s1 is gone: 404s from the handlers (its delete a 204), past authentication.
    assert statuses == [200, 201, 204, 404, 204, 404, 404, 404, 404, 404]
    assert database.snapshot()[0][0].session_id == "s2"


def test_the_401_challenges_for_a_bearer_token(serve):
    client, _ = serve(SecuritySettings(security_key=KEY))
    assert client.get("/sessions").headers["www-authenticate"] == "Bearer"
    assert (
        client.get("/sessions", headers=bearer("wrong")).headers["www-authenticate"] == 'Bearer error="invalid_token"'
    )


@pytest.mark.parametrize("mode", ["key", "jwt"])
def test_health_docs_and_the_contract_stay_open(serve, mode):
    security = (
        SecuritySettings(security_key=KEY) if mode == "key" else SecuritySettings(jwt_verification_key=hs_secret())
    )
    client, _ = serve(security)
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic eDp5"}):
        assert client.get("/health", headers=headers).json()["status"] == "ok"
        assert client.get("/openapi.json", headers=headers).json()["openapi"] == "3.1.0"
        assert "swagger-ui" in client.get("/docs/", headers=headers).text


def test_credentials_are_checked_before_the_request_is_validated(serve):
    """A caller without credentials learns nothing of what else is wrong with the request."""
    client, _ = serve(SecuritySettings(security_key=KEY))
    assert client.get("/sessions?limit=abc").status_code == 401
    assert (
        client.post("/sessions", content=b"{not json", headers={"Content-Type": "application/json"}).status_code == 401
    )
    assert client.get("/sessions?limit=abc", headers=bearer(KEY)).status_code == 422


# --- JWT --------------------------------------------------------------------------------------


def test_hs256_token_with_every_scope_opens_every_operation(serve):
    client, database = serve(SecuritySettings(jwt_verification_key=hs_secret()))
    created = client.post("/sessions", json={"session_id": "s1", "user_id": "someone"}, headers=bearer(token("ann")))
    assert created.status_code == 201
    # The session belongs to the token's subject, whatever the body says (as AgentOS does).
    assert created.json()["user_id"] == "ann"
    statuses = [
        client.request(method, path, json=body, headers=bearer(token("ann"))).status_code
        for method, path, body in OPERATIONS
    ]
    assert statuses == [200, 201, 204, 404, 204, 404, 404, 404, 404, 404]
    assert [row.session_id for row in database.snapshot()[0]] == ["s2"]


def test_a_token_signed_with_another_secret_is_refused(serve):
    client, _ = serve(SecuritySettings(jwt_verification_key=hs_secret()))
    response = client.get("/sessions", headers=bearer(token(key="another secret of at least thirty-two bytes")))
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token: Signature verification failed"})


@pytest.mark.parametrize(
    ("scopes", "allowed"),
    [
        (["sessions:read"], ["GET"]),
        ("sessions:read sessions:write", ["GET", "POST", "PATCH"]),  # OAuth's space-separated form
        (["sessions:*:read", "sessions:*:delete"], ["GET", "DELETE"]),  # AgentOS's wildcard form
        (["agent_os:admin"], ["GET", "POST", "PATCH", "DELETE"]),
        (["sessions:delete"], ["DELETE"]),
        ([], []),
        ({"sessions": "read"}, []),
    ],
)
def test_scopes_grant_their_operations_and_nothing_else(serve, scopes, allowed):
    client, _ = serve(SecuritySettings(jwt_verification_key=hs_secret()))
    headers = bearer(token("ann", scopes))
    checks = {
        "GET": ("GET", "/sessions/none", None, "sessions:read"),
        "POST": ("POST", "/sessions", {}, "sessions:write"),
        "PATCH": ("PATCH", "/sessions/none", {"session_name": "x"}, "sessions:write"),
        "DELETE": ("DELETE", "/sessions/none", None, "sessions:delete"),
    }
    for name, (method, path, body, scope) in checks.items():
        response = client.request(method, path, json=body, headers=headers)
        if name in allowed:
            assert response.status_code in (201, 204, 404), (name, response.text)
        else:
            assert (response.status_code, response.json()) == (
                403,
                {"detail": f"Insufficient permissions. Required scope(s): {scope}"},
            )


def test_an_audience_in_the_token_is_ignored_unless_one_is_configured(serve):
    client, _ = serve(SecuritySettings(jwt_verification_key=hs_secret()))
    assert client.get("/sessions", headers=bearer(token(aud="anything"))).status_code == 200


def test_any_of_several_configured_audiences_is_accepted(serve):
    client, _ = serve(SecuritySettings(jwt_verification_key=hs_secret(), jwt_audience=("a", "b")))
    assert client.get("/sessions", headers=bearer(token(aud="b"))).status_code == 200
    assert client.get("/sessions", headers=bearer(token(aud=["x", "a"]))).status_code == 200
    assert client.get("/sessions", headers=bearer(token(aud="c"))).status_code == 401


def test_a_few_seconds_of_clock_skew_are_allowed(serve):
    client, _ = serve(SecuritySettings(jwt_verification_key=hs_secret()))
    assert client.get("/sessions", headers=bearer(token(expires_in=-5))).status_code == 200
    assert client.get("/sessions", headers=bearer(token(expires_in=-15))).json() == {"detail": "Token has expired"}


def test_es256_public_key(serve):
    client, _ = serve(SecuritySettings(jwt_verification_key=public_pem(ec_key())))
    assert client.get("/sessions", headers=bearer(token(key=ec_key(), algorithm="ES256"))).status_code == 200
    refused = client.get("/sessions", headers=bearer(token(key=rsa_key(), algorithm="RS256")))
    assert refused.json() == {"detail": "Invalid token: The specified alg value is not allowed"}


def test_a_pem_written_on_one_line_with_escaped_newlines(serve):
    one_line = public_pem(rsa_key()).replace("\n", "\\n")
    client, _ = serve(SecuritySettings(jwt_verification_key=one_line))
    assert client.get("/sessions", headers=bearer(token(key=rsa_key(), algorithm="RS256"))).status_code == 200


def test_jwks_file_picks_the_key_by_kid(serve, tmp_path):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key().public_key())), "kid": "k1"},
            {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key().public_key())), "kid": "k2"},
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    client, _ = serve(SecuritySettings(jwt_jwks_file=str(path)))

    def get(signed):
        response = client.get("/sessions", headers=bearer(signed))
        return response.status_code, response.json().get("detail")

    assert get(token(key=rsa_key(), algorithm="RS256", headers={"kid": "k1"}))[0] == 200
    assert get(token(key=ec_key(), algorithm="ES256", headers={"kid": "k2"}))[0] == 200
    # k1 is an RSA key: an ES256 token naming it, or k1's kid on another key's signature, fail.
    assert get(token(key=ec_key(), algorithm="ES256", headers={"kid": "k1"})) == (
        401,
        "Invalid token: The specified alg value is not allowed",
    )
    assert get(token(key=other, algorithm="RS256", headers={"kid": "k1"})) == (
        401,
        "Invalid token: Signature verification failed",
    )
    no_key = (401, "Invalid token: No verification key for the token's key id (kid)")
    assert get(token(key=rsa_key(), algorithm="RS256")) == no_key
    assert get(token(key=rsa_key(), algorithm="RS256", headers={"kid": "k9"})) == no_key


def test_jwt_mode_ignores_the_security_key(serve):
    """As in AgentOS, JWT settings win over OS_SECURITY_KEY (the server logs which mode it runs)."""
    client, _ = serve(SecuritySettings(security_key=KEY, jwt_verification_key=hs_secret()))
    refused = client.get("/sessions", headers=bearer(KEY))
    assert (refused.status_code, refused.json()) == (401, {"detail": "Invalid token: Not enough segments"})
    assert client.get("/sessions", headers=bearer(token())).status_code == 200


def test_the_mode_is_logged_at_start(tmp_path, caplog):
    config = fresh_database(tmp_path)
    security = SecuritySettings(jwt_verification_key=public_pem(rsa_key()), user_isolation=True)
    with (
        caplog.at_level("INFO", logger="agentos_sessions"),
        TestClient(create_app(Settings(databases={"main": config}, security=security))),
    ):
        pass
    assert "Authentication: JWT (RS256, user isolation)" in caplog.messages


# --- CORS ------------------------------------------------------------------------------------

ORIGIN = "https://ui.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization",
}


def test_no_cors_unless_origins_are_configured(serve):
    client, _ = serve(SecuritySettings())
    simple = client.get("/sessions", headers={"Origin": ORIGIN})
    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    preflight = client.options("/sessions/s1", headers=PREFLIGHT)
    assert preflight.status_code == 405
    assert "access-control-allow-origin" not in preflight.headers


def test_listed_origins_may_call_and_others_may_not(serve):
    client, _ = serve(SecuritySettings(security_key=KEY, cors_origins=(ORIGIN,)))
    preflight = client.options("/sessions/s1", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "PATCH" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == (
        "Accept, Accept-Language, Authorization, Content-Language, Content-Type, If-Match, If-None-Match, "
        "If-Range, Range, X-Request-ID"
    )

    answered = client.get("/sessions", headers={"Origin": ORIGIN, **bearer(KEY)})
    assert answered.headers["access-control-allow-origin"] == ORIGIN
    # What a page needs to read: the request id, retry delays, challenges, validators, pages.
    assert answered.headers["access-control-expose-headers"] == (
        "X-Request-ID, Retry-After, WWW-Authenticate, ETag, X-Total-Count, Link, Content-Range"
    )
    # A refusal is readable by the page too, so it can ask its user to sign in.
    refused = client.get("/sessions", headers={"Origin": ORIGIN})
    assert (refused.status_code, refused.headers["access-control-allow-origin"]) == (401, ORIGIN)

    stranger = {**PREFLIGHT, "Origin": "https://evil.example.net"}
    assert client.options("/sessions/s1", headers=stranger).status_code == 400
    assert "access-control-allow-origin" not in client.get("/sessions", headers={**stranger, **bearer(KEY)}).headers
