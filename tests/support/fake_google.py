"""Loopback fakes of the Google APIs the proxy calls, plus the OAuth token endpoint behind them.

* ``POST /token``: a service account's ``token_uri`` (google-auth posts a signed JWT assertion; the
  fake checks its shape and issues ``ya29.fake-N``);
* ``GET /v1/projects/<p>/secrets/<name>/versions/latest:access``: Secret Manager (REST);
* ``POST /v1/documents:moderateText``: Cloud Natural Language text moderation.

Every API call must carry a token this fake issued, or a JWT self-signed by a service account it
knows (what the generated Google clients send for service accounts), 401 otherwise.
:meth:`FakeGoogle.service_account_file` writes a real service-account JSON (a fresh RSA key) whose
``token_uri`` points here, so the real google-auth code signs and exchanges it.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from support.fake_services import FakeService, Reply, Seen

__all__ = ["FakeGoogle"]

#: the categories the real API returns, in its spelling
CATEGORIES = ("Toxic", "Insult", "Profanity", "Derogatory", "Sexual", "Death, Harm & Tragedy", "Violent",
              "Firearms & Weapons", "Public Safety", "Health", "Religion & Belief", "Illicit Drugs",
              "War & Conflict", "Politics", "Finance", "Legal")


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGoogle(FakeService):
    def __init__(self, project: str = "test-project") -> None:
        super().__init__()
        self.project = project
        self.secrets: dict[str, str] = {}
        self.denied: set[str] = set()
        #: substring → {category: confidence}; categories not named score 0.05
        self.scores: dict[str, dict[str, float]] = {}
        self.moderation_status = 200
        self.release = threading.Event()
        self.release.set()
        self.tokens: set[str] = set()
        self.public_keys: list[Any] = []
        self._issued = itertools.count(1)

    def service_account_file(self, directory: Path) -> Path:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_keys.append(key.public_key())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
        path = directory / "service-account.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": self.project, "private_key_id": "key-1",
            "private_key": pem, "client_email": f"proxy@{self.project}.iam.gserviceaccount.com",
            "client_id": "1", "token_uri": self.token_uri,
        }))
        return path

    def _valid_jwt(self, token: str) -> bool:
        """A JWT signed (RS256) by one of our service accounts' keys."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        parts = token.split(".")
        if len(parts) != 3:
            return False
        try:
            signature = _b64url(parts[2])
        except ValueError:
            return False
        for key in self.public_keys:
            try:
                key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
                return True
            except InvalidSignature:
                continue
        return False

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def handle(self, seen: Seen) -> Reply:
        if seen.path == "/token":
            return self._token(seen)
        auth = seen.headers.get("authorization", "")
        bearer = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if bearer not in self.tokens and not self._valid_jwt(bearer):
            return Reply(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                         "status": "UNAUTHENTICATED"}})
        access = re.fullmatch(r"/v1/projects/([^/]+)/secrets/([^/]+)/versions/latest:access", seen.path)
        if seen.method == "GET" and access:
            return self._access(access.group(1), access.group(2))
        if seen.method == "POST" and seen.path == "/v1/documents:moderateText":
            return self._moderate(seen)
        return Reply(404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}})

    def _token(self, seen: Seen) -> Reply:
        form = parse_qs(seen.body.decode())
        assertion = (form.get("assertion") or [""])[0]
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or not self._valid_jwt(assertion):
            return Reply(400, {"error": "invalid_grant"})
        token = f"ya29.fake-{next(self._issued)}"
        self.tokens.add(token)
        return Reply(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

    def _access(self, project: str, name: str) -> Reply:
        if project != self.project:
            return Reply(403, {"error": {"code": 403, "message": "Permission denied on project",
                                         "status": "PERMISSION_DENIED"}})
        if name in self.denied:
            return Reply(403, {"error": {"code": 403, "message": "Permission 'secretmanager.versions.access' "
                                         "denied", "status": "PERMISSION_DENIED"}})
        if name not in self.secrets:
            return Reply(404, {"error": {"code": 404, "message": f"Secret [{name}] not found or has no versions.",
                                         "status": "NOT_FOUND"}})
        data = base64.b64encode(self.secrets[name].encode()).decode()
        return Reply(200, {"name": f"projects/123/secrets/{name}/versions/1", "payload": {"data": data}})

    def _moderate(self, seen: Seen) -> Reply:
        self.release.wait(60)
        if self.moderation_status != 200:
            return Reply(self.moderation_status, {"error": {"code": self.moderation_status, "message": "boom",
                                                           "status": "INTERNAL"}})
        body: Any = seen.json()
        text = body["document"]["content"]
        scores = dict.fromkeys(CATEGORIES, 0.05)
        for needle, values in self.scores.items():
            if needle in text:
                scores.update(values)
        return Reply(200, {"moderationCategories": [{"name": n, "confidence": c} for n, c in scores.items()],
                           "languageCode": "en", "languageSupported": True})
