"""A loopback Azure Key Vault (HTTPS, with a throwaway CA from ``trustme``) and the App Service
managed-identity endpoint that ``DefaultAzureCredential`` gets its token from.

The vault behaves like Key Vault for ``GET /secrets/<name>``: without a bearer token it answers 401
with the Key Vault challenge (``WWW-Authenticate: Bearer authorization=…, resource=…``), which the
real ``SecretClient`` answers by asking its credential for a token; with a token it did not issue,
401; a name in ``denied``, 403 ``Forbidden``; an unknown name, 404 ``SecretNotFound``.

The challenge's ``resource`` is ``https://0.1:<port>``: the client checks that the vault's host ends
with ``.<resource host>`` (``<name>.vault.azure.net`` against ``vault.azure.net`` in Azure). On loopback
the host is ``127.0.0.1``, which ends with ``.0.1``: the client's own check passes unmodified.
"""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path
from typing import Any

from support.fake_services import FakeService, Reply, Seen

__all__ = ["FakeKeyVault", "FakeManagedIdentity", "tls_authority"]

IDENTITY_HEADER = "identity-header-for-tests"


def tls_authority(directory: Path) -> tuple[Any, Path]:
    """``(server SSL context for 127.0.0.1, path of the CA's PEM for clients)``."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    pem = directory / "azure-test-ca.pem"
    ca.cert_pem.write_to_path(str(pem))
    return context, pem


class FakeManagedIdentity(FakeService):
    """``IDENTITY_ENDPOINT`` of an App Service: ``GET ?resource=…`` with ``X-IDENTITY-HEADER``."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()
        self._issued = itertools.count(1)

    def handle(self, seen: Seen) -> Reply:
        if seen.headers.get("x-identity-header") != IDENTITY_HEADER:
            return Reply(401, {"error": "missing or wrong X-IDENTITY-HEADER"})
        resource = (seen.query.get("resource") or [""])[0]
        token = f"azure-token-{next(self._issued)}"
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "expires_on": str(int(time.time()) + 3600),
                           "resource": resource, "token_type": "Bearer", "client_id": "client-for-tests"})


class FakeKeyVault(FakeService):
    def __init__(self, ssl_context: Any, identity: FakeManagedIdentity) -> None:
        super().__init__(ssl_context)
        self.identity = identity
        self.secrets: dict[str, str] = {}
        self.denied: set[str] = set()

    def handle(self, seen: Seen) -> Reply:
        auth = seen.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            challenge = (f'Bearer authorization="https://login.microsoftonline.com/tenant-for-tests", '
                         f'resource="https://0.1:{self.port}"')
            return Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer "
                                         "or PoP token."}}, {"WWW-Authenticate": challenge})
        if auth[len("Bearer "):] not in self.identity.tokens:
            return Reply(401, {"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer."}})
        match = re.fullmatch(r"/secrets/([^/]+)/?", seen.path)
        if seen.method != "GET" or not match:
            return Reply(404, {"error": {"code": "NotFound", "message": "not found"}})
        name = match.group(1)
        if name in self.denied:
            return Reply(403, {"error": {"code": "Forbidden", "message": "The user, group or application does not "
                                         "have secrets get permission on key vault.",
                                         "innererror": {"code": "AccessDenied"}}})
        if name not in self.secrets:
            return Reply(404, {"error": {"code": "SecretNotFound", "message": f"A secret with (name/id) {name} "
                                         "was not found in this key vault."}})
        return Reply(200, {"value": self.secrets[name], "id": f"{self.url}/secrets/{name}/0123456789abcdef",
                           "attributes": {"enabled": True, "created": 1700000000, "updated": 1700000000,
                                          "recoveryLevel": "Recoverable+Purgeable"}})
