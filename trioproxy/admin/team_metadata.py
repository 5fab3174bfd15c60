"""``general_settings.custom_team_metadata_validate``: a user function that checks team metadata
before ``/team/new`` and ``/team/update`` write it (LiteLLM's ``team_metadata_validation.py``).

The function is ``async def validate(payload: TeamMetadataValidationPayload) ->
TeamMetadataValidationResult`` (both exported by ``trioproxy`` for handler files). It fails closed,
as in LiteLLM: ``valid=False`` is a 400 with the function's ``error_message`` (or "Team metadata
failed validation."); an exception, an answer of another shape or no answer within
``team_metadata_validation_timeout`` (default 5 s) is a 503 with
``team_metadata_validation_error_message`` — the team is not written. ``/team/new`` always asks (its
metadata, ``{}`` when none); ``/team/update`` asks when the request changes ``metadata``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import trio

from ..auth.team_metadata import (
    TeamMetadataRequester,
    TeamMetadataValidationPayload,
    TeamMetadataValidationResult,
)
from ..errors import ServiceUnavailableError
from .errors import bad_request

__all__ = ["TeamMetadataRequester", "TeamMetadataValidationPayload", "TeamMetadataValidationResult",
           "TeamMetadataValidator"]

log = logging.getLogger("trioproxy.admin")

DEFAULT_TIMEOUT = 5.0
DEFAULT_UNAVAILABLE = ("Team metadata validation is currently unavailable, so the team was not saved. "
                       "Contact your proxy admin.")
DEFAULT_REJECTED = "Team metadata failed validation."


@dataclass(frozen=True)
class TeamMetadataValidator:
    function: Callable[..., Any]
    name: str
    timeout: float = DEFAULT_TIMEOUT
    unavailable_message: str = DEFAULT_UNAVAILABLE

    @classmethod
    def from_settings(cls, function: Any, name: str, general_settings: Mapping[str, Any]) -> TeamMetadataValidator:
        method = None if inspect.isfunction(function) else type(function).__dict__.get("__call__")
        if not (inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(method)):
            raise ValueError(f"{name} must be an async function (async def validate(payload)), as in LiteLLM")
        timeout = general_settings.get("team_metadata_validation_timeout")
        message = general_settings.get("team_metadata_validation_error_message")
        return cls(function, name, float(timeout) if timeout else DEFAULT_TIMEOUT,
                   message if isinstance(message, str) and message.strip() else DEFAULT_UNAVAILABLE)

    async def check(self, payload: TeamMetadataValidationPayload) -> None:
        """Return when the metadata may be written; 400 (rejected) or 503 (validator unavailable)."""
        result: Any = None
        with trio.move_on_after(self.timeout) as deadline:
            try:
                result = await self.function(payload)
            except (trio.Cancelled, KeyboardInterrupt):
                raise
            except BaseException as exc:   # fail closed: the team is not written
                log.warning("custom_team_metadata_validate %s raised %s: the team was not saved", self.name,
                            type(exc).__name__)
                raise ServiceUnavailableError(self.unavailable_message, code="team_metadata_validation_unavailable") \
                    from None
        if deadline.cancelled_caught:
            log.warning("custom_team_metadata_validate %s did not answer within %g s", self.name, self.timeout)
            raise ServiceUnavailableError(self.unavailable_message, code="team_metadata_validation_unavailable")
        valid, message = _outcome(result)
        if valid is None:
            log.warning("custom_team_metadata_validate %s returned a %s, not a TeamMetadataValidationResult",
                        self.name, type(result).__name__)
            raise ServiceUnavailableError(self.unavailable_message, code="team_metadata_validation_unavailable")
        if not valid:
            raise bad_request(message or DEFAULT_REJECTED, param="metadata")


def _outcome(result: Any) -> tuple[bool | None, str | None]:
    if isinstance(result, TeamMetadataValidationResult):
        return bool(result.valid), result.error_message
    if isinstance(result, Mapping) and isinstance(result.get("valid"), bool):
        message = result.get("error_message")
        return result["valid"], message if isinstance(message, str) else None
    valid = getattr(result, "valid", None)   # a pydantic model of LiteLLM's shape
    if isinstance(valid, bool):
        message = getattr(result, "error_message", None)
        return valid, message if isinstance(message, str) else None
    return None, None
