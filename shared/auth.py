"""Bearer JWTs: HS256 with a shared secret, or RS256 with keys from an OIDC JWKS URL.

The caller's roles are the `roles` claim (a list), the user is `sub`. Missing or bad
token: 401; a role not allowed for the route: 403.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from shared.settings import Settings

ROLES = ("admin", "planner", "shop", "auditor", "machine")
EVERYONE = ROLES
EDITORS = ("admin", "planner")
OPERATORS = ("admin", "planner", "shop")
MACHINES = ("admin", "machine")
SEEN_MAX = 4096
SEEN_FOR = 300.0


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    roles: frozenset[str]


class AuthError(Exception):
    pass


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self._issuer = settings.auth_issuer
        self._audience = settings.auth_audience
        self._ttl = settings.auth_token_ttl
        self._secret = settings.auth_secret.get_secret_value() if settings.auth_secret else None
        self._jwks = jwt.PyJWKClient(settings.auth_jwks_url, cache_keys=True, lifespan=300,
                                     timeout=5) if settings.auth_jwks_url else None
        self._seen: dict[str, tuple[Principal, float]] = {}
        if not self._secret and not self._jwks:
            raise ValueError("set TAKTLINE_AUTH_SECRET or TAKTLINE_AUTH_JWKS_URL")

    def may_fetch_keys(self, token: str) -> bool:
        """Whether verifying `token` may need the JWKS endpoint (anything but HS256 with a JWKS URL)."""
        if self._jwks is None:
            return False
        try:
            return jwt.get_unverified_header(token).get("alg") != "HS256"
        except jwt.PyJWTError:
            return False

    def verified(self, token: str) -> Principal | None:
        """`verify` without blocking: None when that would need the JWKS endpoint and the token
        has not been seen yet."""
        hit = self._seen.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        if self.may_fetch_keys(token):
            return None
        return self.verify(token)

    def verify(self, token: str) -> Principal:
        # A token checked before and not expired is not decoded again: a dashboard sends the
        # same one with every request. Bounded in size and kept at most SEEN_FOR seconds.
        now = time.time()
        hit = self._seen.get(token)
        if hit is not None and hit[1] > now:
            return hit[0]
        principal, expires = self._verify(token)
        if len(self._seen) >= SEEN_MAX:
            self._seen.pop(next(iter(self._seen)))
        self._seen[token] = (principal, min(expires, now + SEEN_FOR))
        return principal

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            if self._jwks is not None and jwt.get_unverified_header(token).get("alg") != "HS256":
                key: Any = self._jwks.get_signing_key_from_jwt(token).key
                algorithms = ["RS256", "ES256"]
            elif self._secret:
                key, algorithms = self._secret, ["HS256"]
            else:
                raise AuthError("HS256 tokens are not accepted")
            claims = jwt.decode(
                token, key, algorithms=algorithms, issuer=self._issuer, audience=self._audience,
                options={"require": ["exp", "sub"], "verify_aud": self._audience is not None},
            )
        except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
            raise AuthError(str(exc)) from exc
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise AuthError("the roles claim must be a list of strings")
        return Principal(subject=str(claims["sub"]), roles=frozenset(roles)), float(claims["exp"])

    def mint(self, subject: str, roles: list[str], ttl: int | None = None) -> str:
        if not self._secret:
            raise AuthError("tokens can only be minted with TAKTLINE_AUTH_SECRET (HS256)")
        now = int(time.time())
        claims: dict[str, Any] = {"sub": subject, "roles": roles, "iat": now,
                                  "exp": now + (ttl or self._ttl)}
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm="HS256")


_bearer = HTTPBearer(auto_error=False, description="A JWT from `taktline token` or your OIDC provider")


async def _principal(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    authenticator: Authenticator = request.app.state.authenticator
    token = credentials.credentials
    try:
        principal = authenticator.verified(token)
        if principal is None:
            # A JWKS fetch blocks: in a thread. HS256 is a few microseconds of CPU, cheaper on the
            # loop than the hop to a thread and back.
            principal = await run_in_threadpool(authenticator.verify, token)
        return principal
    except AuthError as exc:
        raise HTTPException(401, f"invalid token: {exc}",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from exc


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def check(principal: Principal = Depends(_principal)) -> Principal:
        if not principal.roles & allowed:
            raise HTTPException(403, f"requires one of the roles: {', '.join(sorted(allowed))}")
        return principal

    return check


Reader = Annotated[Principal, Depends(require(*EVERYONE))]
Editor = Annotated[Principal, Depends(require(*EDITORS))]
Operator = Annotated[Principal, Depends(require(*OPERATORS))]
MachineRole = Annotated[Principal, Depends(require(*MACHINES))]
