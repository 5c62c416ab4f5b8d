"""Keys made fresh for each test run, and tokens signed with them (nothing secret is in the repo)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from functools import cache

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ALL_SCOPES = ["sessions:read", "sessions:write", "sessions:delete", "config:read"]


@cache
def hs_secret() -> str:
    return secrets.token_urlsafe(48)


@cache
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(private_key) -> str:
    """The PEM of a private key's public half, as JWT_VERIFICATION_KEY takes it."""
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def token(
    sub: str | None = "alice",
    scopes=ALL_SCOPES,
    *,
    key=None,
    algorithm: str = "HS256",
    expires_in: int | None = 600,
    headers: dict | None = None,
    **claims,
) -> str:
    """A signed JWT (HS256 with the test secret unless another key is given)."""
    payload = {"iat": int(time.time()), **claims}
    if sub is not None:
        payload["sub"] = sub
    if scopes is not None:
        payload["scopes"] = scopes
    if expires_in is not None:
        payload["exp"] = int(time.time()) + expires_in
    return jwt.encode(payload, key if key is not None else hs_secret(), algorithm=algorithm, headers=headers)


def unsigned(sub: str = "alice", scopes=ALL_SCOPES) -> str:
    """A token with ``alg: none`` and no signature, as an attacker would write it."""

    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": sub, "scopes": scopes, "exp": int(time.time()) + 600}
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def tampered(signed: str, **changes) -> str:
    """``signed`` with its claims changed and its signature kept (no longer matching)."""
    header, payload, signature = signed.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def bearer(value: str) -> dict:
    return {"Authorization": f"Bearer {value}"}
