"""The types of ``general_settings.custom_team_metadata_validate`` functions (LiteLLM's
``team_metadata_validation.py`` names): what the function receives and returns.

Plain types for handler files (``from trioproxy import TeamMetadataValidationPayload``); here rather
than beside their caller (``admin/team_metadata.py``) because the handler API may import ``auth``
and not ``admin`` (tests/structure/test_layers.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["TeamMetadataRequester", "TeamMetadataValidationPayload", "TeamMetadataValidationResult"]


@dataclass
class TeamMetadataRequester:
    user_id: str | None = None
    user_email: str | None = None
    user_role: str | None = None


@dataclass
class TeamMetadataValidationPayload:
    operation: Literal["create", "update"]
    metadata: dict[str, Any]
    requester: TeamMetadataRequester
    existing_metadata: dict[str, Any] | None = None
    team_id: str | None = None
    team_alias: str | None = None


@dataclass
class TeamMetadataValidationResult:
    valid: bool
    error_message: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
