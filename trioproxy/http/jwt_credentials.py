"""Bearer JWTs for the :class:`~trioproxy.auth.Authenticator` (its ``BearerTokens``).

Joins the two halves the layers keep apart: verification (``access.JWTAuthenticator``: signature by
``kid`` from the JWKS, ``exp``/``nbf``/``aud``/``iss``, RS256/PS256/ES256 only) and the store's view
of the caller (``store.jwt_records.JWTRecords``: the team must exist and binds models, limits and
budget; ``user_id_upsert`` creates the user). The result is an ``Identity`` of kind ``jwt`` whose
record every later step (model access, limits, spend, hooks, management routes) reads like a key's.
A token that lists several teams (``team_ids_jwt_field``) and names none is bound to one of them
per request (``for_request``, called by the pipeline once the body's model is known): the first
listed team that may use the model, or the ``x-litellm-team-id`` header's (``JWTRecords.record_for_model``).

With ``enable_jwt_auth`` off, a JWT-shaped bearer is answered "JWT auth is off" (not "invalid key").
Without a database, a JWT that names a team or user cannot be bound to it: refused with a 401 that
says so (a team claim must never be trusted without the team's limits).
"""

from __future__ import annotations

from typing import Any, Protocol

from ..access import JWTAuthenticator, JWTAuthSettings, jwt_not_enabled_error, looks_like_jwt
from ..access.errors import AccessUnauthenticated
from ..auth import Identity

__all__ = ["JWTCredentials"]


class Records(Protocol):
    async def record_for(self, jwt: Any) -> Any: ...

    def needs_team(self, jwt: Any) -> bool: ...

    async def record_for_model(self, jwt: Any, model: str | None, header_team_id: str | None = None) -> Any: ...


class JWTCredentials:
    """``looks_like`` / ``identify`` for the Authenticator; ``settings`` ``None`` while JWT auth is off."""

    def __init__(self, verifier: JWTAuthenticator | None, records: Records | None) -> None:
        self.verifier = verifier
        self.records = records
        self.settings: JWTAuthSettings | None = verifier.settings if verifier is not None else None

    def looks_like(self, token: str) -> bool:
        return looks_like_jwt(token)

    async def identify(self, token: str) -> Identity:
        if self.verifier is None:
            raise jwt_not_enabled_error()
        claims = await self.verifier.authenticate(token)
        if self.records is None:
            raise AccessUnauthenticated("Authentication Error, JWT auth needs a database "
                                        "(general_settings.database_url) to bind a token to its team and user.")
        return Identity.from_jwt(claims, await self.records.record_for(claims))

    async def for_request(self, identity: Identity, model: Any, headers: Any) -> Identity:
        """``identity`` bound to the team that serves this request, for a token that lists several
        teams (``team_ids_jwt_field``) and names none; any other identity unchanged. ``model``: the
        body's ``model``; ``headers``: the request's (``x-litellm-team-id`` picks a listed team)."""
        jwt = identity.jwt
        if identity.kind != "jwt" or jwt is None or self.records is None or not self.records.needs_team(jwt):
            return identity
        header = headers.get("x-litellm-team-id") if headers is not None else None
        record = await self.records.record_for_model(jwt, model if isinstance(model, str) and model else None,
                                                     header.strip() if isinstance(header, str) and header.strip()
                                                     else None)
        return Identity.from_jwt(jwt, record)
