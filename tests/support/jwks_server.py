"""A real identity provider's key endpoint on 127.0.0.1 (a thread), and signing keys made in the test.

``JWKSServer`` serves ``/.well-known/jwks.json`` (the document is ``server.document``, swap it to
rotate keys; ``server.status`` != 200 makes it fail) and an OIDC discovery document pointing at it,
and counts the JWKS requests (``server.hits``). ``SigningKey`` is an RSA or EC key pair with a
``kid``: ``key.jwk`` is its public JWK, ``key.token(claims)`` a signed JWT.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/realms/test/.well-known/openid-configuration"


class SigningKey:
    def __init__(self, kid: str | None, alg: str = "RS256") -> None:
        self.kid, self.alg = kid, alg
        if alg.startswith("ES"):
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk: dict[str, Any] = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk["use"] = "sig"
        if kid is not None:
            self.jwk["kid"] = kid

    def token(self, claims: dict[str, Any] | None = None, *, alg: str | None = None, kid: str | None = "same",
              lifetime: float = 3600, **extra: Any) -> str:
        """A token signed with this key; ``exp`` defaults to an hour from now."""
        body = {"sub": "user-1", "exp": int(time.time() + lifetime), **(claims or {}), **extra}
        header_kid = self.kid if kid == "same" else kid
        headers = {"kid": header_kid} if header_kid is not None else {}
        return jwt.encode(body, self.private, algorithm=alg or self.alg, headers=headers)


class JWKSServer:
    def __init__(self, *keys: SigningKey) -> None:
        self.document: Any = {"keys": [k.jwk for k in keys]}
        self.status = 200
        self.hits = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == JWKS_PATH:
                    with server._lock:
                        server.hits += 1
                        status, body = server.status, json.dumps(server.document).encode()
                elif self.path == DISCOVERY_PATH:
                    status, body = 200, json.dumps({"issuer": "test", "jwks_uri": server.url}).encode()
                else:
                    status, body = 404, b"{}"
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="jwks-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}{JWKS_PATH}"

    @property
    def discovery_url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}{DISCOVERY_PATH}"

    def __enter__(self) -> JWKSServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=10)
