"""A loopback HashiCorp Vault speaking the KV v2 and AppRole HTTP API (no ``vault`` binary is
installable from Debian here: ``apt-cache policy vault`` finds nothing).

What it checks, as Vault does: ``X-Vault-Token`` (a static root token, or one issued by AppRole login)
→ 403 ``permission denied`` otherwise; ``X-Vault-Namespace`` when a namespace is configured (a token
is only valid in its namespace → 403); ``POST /v1/auth/<approle mount>/login`` with ``role_id`` and
``secret_id`` → 400 ``invalid role or secret ID`` when wrong; ``GET /v1/<mount>/data/<path>`` → the
KV v2 envelope ``{"data": {"data": {...}, "metadata": {...}}}`` or 404 ``{"errors": []}``.
``sealed = True`` answers 503 like a sealed Vault.
"""

from __future__ import annotations

import itertools
from typing import Any

from support.fake_services import FakeService, Reply, Seen

__all__ = ["FakeVault"]


class FakeVault(FakeService):
    def __init__(self, *, token: str | None = "hvs.root-token-for-tests", namespace: str | None = None,
                 mount: str = "secret", role_id: str | None = None, secret_id: str | None = None,
                 approle_mount: str = "approle", lease: int = 3600) -> None:
        super().__init__()
        self.tokens = {token} if token else set()
        self.namespace = namespace
        self.mount = mount
        self.role_id = role_id
        self.secret_id = secret_id
        self.approle_mount = approle_mount
        self.lease = lease
        self.data: dict[str, dict[str, Any]] = {}
        self.sealed = False
        self._issued = itertools.count(1)

    def put(self, path: str, **fields: Any) -> None:
        self.data[path] = fields

    def handle(self, seen: Seen) -> Reply:
        if self.sealed:
            return Reply(503, {"errors": ["Vault is sealed"]})
        namespace = (seen.headers.get("x-vault-namespace") or "").strip("/") or None
        if namespace != self.namespace:
            return Reply(403, {"errors": ["permission denied"]})
        if seen.method == "POST" and seen.path == f"/v1/auth/{self.approle_mount}/login":
            body = seen.json() or {}
            if not self.role_id or body.get("role_id") != self.role_id or body.get("secret_id") != self.secret_id:
                return Reply(400, {"errors": ["invalid role or secret ID"]})
            token = f"hvs.approle-{next(self._issued)}"
            self.tokens.add(token)
            return Reply(200, {"auth": {"client_token": token, "accessor": "acc", "policies": ["default"],
                                        "lease_duration": self.lease, "renewable": True}})
        if seen.headers.get("x-vault-token") not in self.tokens:
            return Reply(403, {"errors": ["permission denied"]})
        prefix = f"/v1/{self.mount}/data/"
        if seen.method == "GET" and seen.path.startswith(prefix):
            fields = self.data.get(seen.path[len(prefix):])
            if fields is None:
                return Reply(404, {"errors": []})
            return Reply(200, {"request_id": "r", "lease_id": "", "renewable": False, "lease_duration": 0,
                               "data": {"data": fields, "metadata": {"created_time": "2026-01-01T00:00:00Z",
                                                                      "custom_metadata": None, "deletion_time": "",
                                                                      "destroyed": False, "version": 1}},
                               "wrap_info": None, "warnings": None, "auth": None, "mount_type": "kv"})
        return Reply(404, {"errors": []})
