"""Choosing the security mode from the environment, and refusing configurations that cannot work."""

from __future__ import annotations

import json
import logging
import time

import pytest
from cryptography.hazmat.primitives import serialization

from agentos_sessions import security
from agentos_sessions.settings import SecuritySettings, Settings, SettingsError
from tests.servers import free_port
from tests.tokens import ec_key, hs_secret, public_pem, rsa_key, token


def _mode(environ: dict) -> str:
    return Settings.from_env(environ).security.mode


def test_the_mode_follows_the_environment_as_in_agentos():
    assert _mode({}) == "none"
    assert _mode({"OS_SECURITY_KEY": ""}) == "none"
    assert _mode({"OS_SECURITY_KEY": "k"}) == "security_key"
    assert _mode({"JWT_VERIFICATION_KEY": "s"}) == "jwt"
    assert _mode({"JWT_JWKS_FILE": "/keys.json"}) == "jwt"
    assert _mode({"OS_SECURITY_KEY": "k", "JWT_VERIFICATION_KEY": "s"}) == "jwt"


def test_every_security_variable_is_read():
    settings = Settings.from_env(
        {
            "JWT_VERIFICATION_KEY": "s",
            "JWT_AUDIENCE": "api, ui",
            "AGENTOS_USER_ISOLATION": "true",
            "CORS_ORIGIN_LIST": '["https://a.example", "http://localhost:3000"]',
        }
    ).security
    assert settings == SecuritySettings(
        jwt_verification_key="s",
        jwt_audience=("api", "ui"),
        user_isolation=True,
        cors_origins=("https://a.example", "http://localhost:3000"),
    )
    assert Settings.from_env({"CORS_ORIGIN_LIST": "https://a.example,https://b.example"}).security.cors_origins == (
        "https://a.example",
        "https://b.example",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AGENTOS_USER_ISOLATION": "true"}, "AGENTOS_USER_ISOLATION needs JWT mode"),
        ({"AGENTOS_USER_ISOLATION": "true", "OS_SECURITY_KEY": "k"}, "AGENTOS_USER_ISOLATION needs JWT mode"),
        ({"AGENTOS_USER_ISOLATION": "maybe"}, "AGENTOS_USER_ISOLATION must be true or false"),
        ({"CORS_ORIGIN_LIST": "*"}, "'*' is not accepted"),
        ({"CORS_ORIGIN_LIST": '["https://a.example",'}, "CORS_ORIGIN_LIST is not valid JSON"),
        ({"CORS_ORIGIN_LIST": "[1, 2]"}, "CORS_ORIGIN_LIST must be a JSON list of origins"),
        ({"CORS_ORIGIN_LIST": "https://a.example/"}, "'https://a.example/' is not an origin"),
        ({"CORS_ORIGIN_LIST": "a.example"}, "'a.example' is not an origin"),
    ],
)
def test_unusable_security_settings_are_refused(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def _private_pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("too-short-a-secret", "an HS256 secret must be at least 32 bytes"),
        (lambda: _private_pem(rsa_key()), "holds a private key: give the public key"),
        ("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----", "is not a readable PEM public key"),
    ],
)
def test_unusable_verification_keys_are_refused(key, message):
    key = key() if callable(key) else key
    with pytest.raises(SettingsError, match=message):
        security.authenticator(SecuritySettings(jwt_verification_key=key))


def test_each_key_type_verifies_its_own_algorithm_only():
    def algorithms(key: str) -> list[str]:
        return [entry.algorithm for entry in security.authenticator(SecuritySettings(jwt_verification_key=key)).keys]

    assert algorithms(hs_secret()) == ["HS256"]
    assert algorithms(public_pem(rsa_key())) == ["RS256"]
    assert algorithms(public_pem(ec_key())) == ["ES256"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot be read"),
        ("{not json", "is not a usable JWK set"),
        (json.dumps({"keys": []}), "is not a usable JWK set"),
        (json.dumps([{"kty": "oct"}]), 'is not a usable JWK set: a JWK set is an object with a "keys" list'),
        (json.dumps({"keys": [{"kty": "oct", "k": "c2hvcnQ", "kid": "k"}]}), "shorter than 32 bytes"),
    ],
)
def test_unusable_jwks_files_are_refused(tmp_path, content, message):
    path = tmp_path / "jwks.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        security.authenticator(SecuritySettings(jwt_jwks_file=str(path)))


def test_serve_refuses_an_unusable_key_before_listening(monkeypatch, capsys):
    from agentos_sessions import cli

    monkeypatch.setenv("JWT_VERIFICATION_KEY", "short")
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("the server must not start"))
    assert cli.main(["serve"]) == 2
    assert "an HS256 secret must be at least 32 bytes" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "host", "warned"),
    [
        ({}, "0.0.0.0", True),
        ({}, "::", True),
        ({}, "192.168.1.20", True),
        ({}, "sessions.internal", True),
        ({}, "127.0.0.1", False),
        ({}, "127.0.0.5", False),
        ({}, "::1", False),
        ({}, "localhost", False),
        ({"OS_SECURITY_KEY": "k"}, "0.0.0.0", False),
        ({"JWT_VERIFICATION_KEY": "k"}, "0.0.0.0", False),
    ],
)
def test_an_open_server_on_a_reachable_address_is_warned_about(environ, host, warned):
    from agentos_sessions import cli

    warning = cli.open_access_warning(Settings.from_env(environ), host)
    assert (warning is not None) == warned
    if warned:
        assert warning.startswith(f"NO AUTHENTICATION: listening on {host}")


async def _no_migration(settings):
    pass


def test_serve_logs_the_warning(monkeypatch, caplog):
    from agentos_sessions import cli

    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: None)
    monkeypatch.setattr(cli, "create_app", lambda settings: settings)
    monkeypatch.setattr(cli, "_migrate_all", _no_migration)
    with caplog.at_level(logging.WARNING, logger="agentos_sessions"):
        assert cli.main(["serve", "--host", "0.0.0.0", "--port", str(free_port())]) == 0
    assert any(message.startswith("NO AUTHENTICATION") for message in caplog.messages)


def test_scopes():
    caller = security.Caller("ann", frozenset({"sessions:read", "sessions:*:delete"}))
    assert [caller.may(scope) for scope in ("sessions:read", "sessions:write", "sessions:delete")] == [
        True,
        False,
        True,
    ]
    admin = security.Caller("root", frozenset({"agent_os:admin"}))
    assert admin.may("sessions:write") and admin.admin
    assert security.Caller("ann", frozenset({"sessions:*"})).may("sessions:read") is False


def test_a_remembered_token_still_expires(monkeypatch):
    verifier = security.authenticator(SecuritySettings(jwt_verification_key=hs_secret()))
    header = [f"Bearer {token('ann', expires_in=60)}"]
    assert verifier.authenticate(header).user_id == "ann"
    assert verifier.authenticate(header).user_id == "ann"  # from what the first call verified
    later = time.time() + 60 + security.LEEWAY_SECONDS + 1
    monkeypatch.setattr(security.time, "time", lambda: later)
    with pytest.raises(security.Unauthorized, match="Token has expired"):
        verifier.authenticate(header)


def test_only_tokens_that_verified_are_remembered():
    verifier = security.authenticator(SecuritySettings(jwt_verification_key=hs_secret()))
    for _ in range(2):
        with pytest.raises(security.Unauthorized, match="Signature verification failed"):
            verifier.authenticate([f"Bearer {token(key='another secret that is at least 32 bytes long')}"])
    verifier.authenticate([f"Bearer {token()}"])
    assert verifier._verified.cache_info().currsize == 1
