"""Who is calling, and what they may do.

AgentOS's three modes, chosen by the environment (:class:`settings.SecuritySettings`): open, a
shared security key, or JSON Web Tokens verified with PyJWT, whose ``scopes`` claim grants
``sessions:read``, ``sessions:write`` and ``sessions:delete`` (``agent_os:admin`` grants all).
The contract's ``HTTPBearer`` scheme names the scope of each operation; Connexion's security
middleware calls :class:`BearerAuth` for every operation that declares the scheme, after routing
and before the request is validated, so a caller without the right token learns nothing else.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jwt
from connexion.context import context
from connexion.security import AbstractSecurityHandler
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate

from agentos_sessions.errors import Forbidden, Unauthorized
from agentos_sessions.settings import SecuritySettings, SettingsError

logger = logging.getLogger(__name__)

ADMIN_SCOPE = "agent_os:admin"
# Clock skew allowed on exp, nbf and iat, as AgentOS allows.
LEEWAY_SECONDS = 10
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash.
MIN_SECRET_BYTES = 32
# Tokens whose verification is remembered (JwtVerifier).
VERIFIED_TOKENS = 4096

INVALID_TOKEN = "Invalid authentication token"


@dataclass(frozen=True)
class Caller:
    """The party behind a request: its user id (a token's ``sub``) and its scopes."""

    user_id: str | None
    scopes: frozenset[str]
    # Under user isolation a non-admin caller sees and changes only its own sessions.
    isolated: bool = False

    @property
    def admin(self) -> bool:
        return ADMIN_SCOPE in self.scopes

    def may(self, scope: str) -> bool:
        """``sessions:read`` is granted by itself, by AgentOS's ``sessions:*:read`` or by the admin
        scope; ``config:read`` also by its legacy alias ``system:read``, as AgentOS grants it."""
        resource, _, action = scope.partition(":")
        names = (resource, *_LEGACY_NAMES.get(resource, ()))
        granted = {f"{name}:{action}" for name in names} | {f"{name}:*:{action}" for name in names}
        return self.admin or not granted.isdisjoint(self.scopes)

    def acting_for(self, user_id: str | None) -> str | None:
        """The user a request acts for: the caller when isolated, whatever was asked otherwise."""
        return self.user_id if self.isolated else user_id


# Resources AgentOS renamed, and the names its tokens may still carry (agno/os/scopes.py).
_LEGACY_NAMES = {"config": ("system",)}

# Open mode and the security key's holder: every scope, no user of its own (as in AgentOS).
TRUSTED = Caller(user_id=None, scopes=frozenset({ADMIN_SCOPE}))


def current_caller() -> Caller:
    """The caller of the operation being handled (set by :class:`BearerAuth`)."""
    return context["token_info"]["caller"]


def bearer_token(authorization: Sequence[str], missing: str) -> str:
    """The token of the one ``Authorization: Bearer <token>`` header (the scheme in any case)."""
    values = [value.strip() for value in authorization if value.strip()]
    if not values:
        raise Unauthorized(missing, challenge="Bearer")
    scheme, _, token = values[0].partition(" ")
    if len(values) > 1 or scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(INVALID_TOKEN)
    return token.strip()


class OpenAccess:
    """No authentication: every caller may do everything."""

    description = "none (open to anyone who can reach the server)"

    def authenticate(self, authorization: Sequence[str]) -> Caller:
        return TRUSTED


class SecurityKey:
    """One shared key, compared in constant time; its holder may do everything."""

    description = "security key (OS_SECURITY_KEY)"

    def __init__(self, key: str):
        self._key = key.encode("utf-8")

    def authenticate(self, authorization: Sequence[str]) -> Caller:
        token = bearer_token(authorization, "Authorization header required")
        # Starlette decodes header bytes as latin-1: encoding back gives the bytes that were sent.
        if not hmac.compare_digest(token.encode("latin-1"), self._key):
            raise Unauthorized(INVALID_TOKEN)
        return TRUSTED


@dataclass(frozen=True)
class VerificationKey:
    """A key tokens may be signed with, the one algorithm it verifies, and its ``kid`` if any."""

    key: object
    algorithm: str
    kid: str | None = None


class JwtVerifier:
    """Signed tokens: signature, ``exp`` (required), ``nbf``/``iat`` and, if configured, ``aud``.

    Each key verifies the one algorithm its type implies (an HMAC secret HS256, an RSA key
    RS256, a P-256 key ES256, ...): ``none`` and algorithm confusion cannot get through.
    """

    def __init__(self, keys: Sequence[VerificationKey], *, audience: Sequence[str] = (), isolation: bool = False):
        if not keys:
            raise SettingsError("No JWT verification key: set JWT_VERIFICATION_KEY or JWT_JWKS_FILE")
        self.keys = list(keys)
        self.audience = list(audience)
        self.isolation = isolation
        # Verifying costs ~150 us a request (most of it PyJWT's parsing); clients send the same
        # token many times. What a verification establishes holds until the token's exp, which
        # is checked again on every use; only tokens that verified are kept.
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._decode)
        algorithms = sorted({key.algorithm for key in self.keys})
        self.description = f"JWT ({', '.join(algorithms)}{', user isolation' if isolation else ''})"

    def authenticate(self, authorization: Sequence[str]) -> Caller:
        token = bearer_token(authorization, "Authorization header missing")
        try:
            claims = self._verified(token)
            if claims["exp"] + LEEWAY_SECONDS < time.time():
                raise jwt.ExpiredSignatureError("Signature has expired")
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("Token has expired") from error
        except jwt.InvalidAudienceError as error:
            raise Unauthorized("Invalid token audience - token not valid for this AgentOS instance") from error
        except jwt.InvalidTokenError as error:
            # PyJWT's messages describe the token (never the keys), as AgentOS reports them.
            raise Unauthorized(f"Invalid token: {error}") from error
        user_id = claims.get("sub") or None
        admin = ADMIN_SCOPE in (scopes := _scopes(claims.get("scopes")))
        if self.isolation and user_id is None:
            raise Forbidden("Authenticated request is missing a user identity")
        return Caller(user_id=user_id, scopes=scopes, isolated=self.isolation and not admin)

    def _decode(self, token: str) -> dict:
        header = jwt.get_unverified_header(token)
        candidates = [key for key in self.keys if key.kid is not None and key.kid == header.get("kid")]
        candidates = candidates or [key for key in self.keys if key.kid is None]
        if not candidates:
            raise jwt.InvalidTokenError("No verification key for the token's key id (kid)")
        candidates = [key for key in candidates if key.algorithm == header.get("alg")]
        if not candidates:
            raise jwt.InvalidAlgorithmError("The specified alg value is not allowed")
        failure = None
        for key in candidates:
            try:
                return jwt.decode(
                    token,
                    key.key,
                    algorithms=[key.algorithm],
                    audience=self.audience or None,
                    leeway=LEEWAY_SECONDS,
                    options={"require": ["exp"], "verify_aud": bool(self.audience)},
                )
            except jwt.InvalidSignatureError as error:
                failure = failure or error
        raise failure


def _scopes(claim) -> frozenset[str]:
    """The ``scopes`` claim: a list of scopes or one space-separated string (OAuth's form)."""
    if isinstance(claim, str):
        return frozenset(claim.split())
    if isinstance(claim, list):
        return frozenset(scope for scope in claim if isinstance(scope, str))
    return frozenset()


def authenticator(settings: SecuritySettings) -> OpenAccess | SecurityKey | JwtVerifier:
    """The authenticator of the configured mode; bad key material is a :class:`SettingsError`."""
    if settings.mode == "jwt":
        keys = []
        if settings.jwt_verification_key:
            keys.append(_verification_key(settings.jwt_verification_key))
        if settings.jwt_jwks_file:
            keys.extend(_jwks_keys(settings.jwt_jwks_file))
        return JwtVerifier(keys, audience=settings.jwt_audience, isolation=settings.user_isolation)
    if settings.mode == "security_key":
        return SecurityKey(settings.security_key)
    return OpenAccess()


def _verification_key(text: str) -> VerificationKey:
    """JWT_VERIFICATION_KEY: a PEM public key (or certificate), else an HS256 secret."""
    if not text.lstrip().startswith("-----BEGIN"):
        if len(text.encode("utf-8")) < MIN_SECRET_BYTES:
            raise SettingsError(
                f"JWT_VERIFICATION_KEY: an HS256 secret must be at least {MIN_SECRET_BYTES} bytes (RFC 7518)"
            )
        return VerificationKey(text.encode("utf-8"), "HS256")
    # A PEM kept on one line of an environment file, with its newlines written as \n.
    pem = text.strip().replace("\\n", "\n").encode("ascii")
    if b"PRIVATE KEY" in pem.split(b"\n", 1)[0]:
        raise SettingsError("JWT_VERIFICATION_KEY holds a private key: give the public key")
    try:
        if b"CERTIFICATE" in pem.split(b"\n", 1)[0]:
            public_key = load_pem_x509_certificate(pem).public_key()
        else:
            public_key = load_pem_public_key(pem)
    except ValueError as error:
        raise SettingsError(f"JWT_VERIFICATION_KEY is not a readable PEM public key: {error}") from error
    return VerificationKey(public_key, _algorithm_of(public_key))


_CURVE_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _algorithm_of(public_key) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _CURVE_ALGORITHMS:
        return _CURVE_ALGORITHMS[public_key.curve.name]
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        return "EdDSA"
    raise SettingsError(f"JWT_VERIFICATION_KEY: unsupported key type {type(public_key).__name__}")


def _jwks_keys(path: str) -> list[VerificationKey]:
    """JWT_JWKS_FILE: a JSON Web Key Set (``{"keys": [...]}``); each key verifies its own algorithm."""
    try:
        document = json.loads(Path(path).read_text())
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise jwt.PyJWKSetError('a JWK set is an object with a "keys" list')
        key_set = jwt.PyJWKSet.from_dict(document)
    except OSError as error:
        raise SettingsError(f"JWT_JWKS_FILE {path!r} cannot be read: {error.strerror}") from error
    except (json.JSONDecodeError, jwt.PyJWTError) as error:
        raise SettingsError(f"JWT_JWKS_FILE {path!r} is not a usable JWK set: {error}") from error
    keys = [VerificationKey(key.key, key.algorithm_name, key.key_id) for key in key_set.keys]
    for key in keys:
        if key.algorithm.startswith("HS") and len(key.key) < MIN_SECRET_BYTES:
            raise SettingsError(f"JWT_JWKS_FILE: the HMAC key {key.kid!r} is shorter than {MIN_SECRET_BYTES} bytes")
    return keys


class BearerAuth(AbstractSecurityHandler):
    """Connexion's handler for the contract's ``http``/``bearer`` scheme.

    The operation's security requirement lists the scopes it needs (OpenAPI 3.1 allows such
    roles for any scheme); the caller must hold each of them.
    """

    def __init__(self, authenticator):
        self.authenticator = authenticator

    def get_fn(self, security_scheme: dict, required_scopes: Iterable[str]):
        authenticate = self.authenticator.authenticate
        required = list(required_scopes)

        def verify(request) -> dict:
            caller = authenticate(request.headers.getlist("authorization"))
            missing = [scope for scope in required if not caller.may(scope)]
            if missing:
                raise Forbidden(f"Insufficient permissions. Required scope(s): {', '.join(missing)}")
            # Connexion puts this in context["token_info"] and "sub" in context["user"].
            return {"sub": caller.user_id, "caller": caller}

        return verify


def security_map(authenticator) -> dict:
    """Connexion's ``security_map`` argument: bearer schemes verified by ``authenticator``."""
    return {"bearer": functools.partial(BearerAuth, authenticator)}
