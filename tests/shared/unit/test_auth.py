"""Bearer tokens: HS256 with the shared secret, RS256 through a JWKS served on loopback."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from shared.auth import Authenticator, AuthError
from shared.settings import Settings

SECRET = "s" * 40
OTHER_SECRET = "o" * 40


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The developer's TAKTLINE_* variables must not leak in; and PyJWKClient uses urllib,
    # which would send even loopback requests to a configured proxy.
    proxies = {"http_proxy", "https_proxy", "all_proxy"}
    for name in list(os.environ):
        if name.startswith("TAKTLINE_") or name.lower() in proxies:
            monkeypatch.delenv(name)


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _hs256(claims: dict[str, object], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


class TestHs256:
    def test_minted_token_verifies_with_subject_and_roles(self) -> None:
        auth = Authenticator(_settings(auth_secret=SECRET))
        principal = auth.verify(auth.mint("alice", ["planner", "shop"]))
        assert principal.subject == "alice"
        assert principal.roles == frozenset({"planner", "shop"})

    def test_expired_token_is_rejected(self) -> None:
        auth = Authenticator(_settings(auth_secret=SECRET))
        token = _hs256({"sub": "alice", "roles": ["admin"], "exp": int(time.time()) - 60})
        with pytest.raises(AuthError, match="expired"):
            auth.verify(token)

    def test_token_signed_with_another_secret_is_rejected(self) -> None:
        auth = Authenticator(_settings(auth_secret=SECRET))
        token = _hs256({"sub": "alice", "roles": ["admin"], "exp": int(time.time()) + 60}, OTHER_SECRET)
        with pytest.raises(AuthError):
            auth.verify(token)

    def test_roles_claim_that_is_not_a_list_is_rejected(self) -> None:
        auth = Authenticator(_settings(auth_secret=SECRET))
        token = _hs256({"sub": "alice", "roles": "admin", "exp": int(time.time()) + 60})
        with pytest.raises(AuthError, match="roles"):
            auth.verify(token)

    def test_token_without_expiry_is_rejected(self) -> None:
        auth = Authenticator(_settings(auth_secret=SECRET))
        with pytest.raises(AuthError):
            auth.verify(_hs256({"sub": "alice", "roles": ["admin"]}))

    def test_issuer_and_audience_are_enforced_when_configured(self) -> None:
        auth = Authenticator(_settings(auth_secret=SECRET, auth_issuer="taktline", auth_audience="shop"))
        assert auth.verify(auth.mint("alice", ["auditor"])).subject == "alice"
        foreign = _hs256({"sub": "alice", "roles": ["admin"], "exp": int(time.time()) + 60,
                          "iss": "elsewhere", "aud": "shop"})
        with pytest.raises(AuthError):
            auth.verify(foreign)

    def test_without_secret_or_jwks_the_authenticator_refuses_to_exist(self) -> None:
        with pytest.raises(ValueError, match="TAKTLINE_AUTH_SECRET"):
            Authenticator(_settings())


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks_url(rsa_key: rsa.RSAPrivateKey) -> Iterator[str]:
    """A JWKS document served on 127.0.0.1, as an OIDC provider would."""
    jwk = json.loads(RSAAlgorithm.to_jwk(rsa_key.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "test-key", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()


class TestRs256WithJwks:
    def _token(self, key: rsa.RSAPrivateKey, **claims: object) -> str:
        base: dict[str, object] = {"sub": "oidc-user", "roles": ["shop"], "exp": int(time.time()) + 60}
        return jwt.encode({**base, **claims}, key, algorithm="RS256", headers={"kid": "test-key"})

    def test_token_signed_by_the_provider_key_verifies(self, rsa_key: rsa.RSAPrivateKey, jwks_url: str) -> None:
        auth = Authenticator(_settings(auth_jwks_url=jwks_url))
        principal = auth.verify(self._token(rsa_key))
        assert principal.subject == "oidc-user"
        assert principal.roles == frozenset({"shop"})

    def test_token_signed_by_another_key_is_rejected(self, jwks_url: str) -> None:
        stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        auth = Authenticator(_settings(auth_jwks_url=jwks_url))
        with pytest.raises(AuthError):
            auth.verify(self._token(stranger))

    def test_hs256_token_is_rejected_when_only_jwks_is_configured(self, jwks_url: str) -> None:
        auth = Authenticator(_settings(auth_jwks_url=jwks_url))
        with pytest.raises(AuthError):
            auth.verify(_hs256({"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60}))

    def test_minting_needs_the_hs256_secret(self, jwks_url: str) -> None:
        with pytest.raises(AuthError):
            Authenticator(_settings(auth_jwks_url=jwks_url)).mint("x", ["admin"])
