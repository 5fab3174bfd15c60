"""Names LiteLLM handler files import, with LiteLLM's values, so the files port by changing imports.

Each name here is what LiteLLM defines under the same name (module named in its docstring line);
``trioproxy/__init__.py`` exports them and the README's import table lists them. They are types,
constants and one helper: nothing here changes how the proxy runs a hook.

* :class:`CallTypes` / :data:`CallTypesLiteral` (``litellm.types.utils``): the ``call_type`` a hook
  receives. trioproxy passes ``completion``, ``text_completion`` and ``embeddings`` (the endpoints it
  serves; a translated ``/v1/responses`` request is a ``completion``, a natively forwarded one
  ``aresponses``, see ``docs/responses_api.md``);
  the others exist so that comparisons in a handler file keep working.
* :class:`GuardrailEventHooks` (``litellm.types.guardrails``): the modes of a guardrail, as a
  ``str`` enum (``GuardrailEventHooks.pre_call == "pre_call"``, ``.value`` works too).
* :class:`GenericGuardrailAPIInputs` (``litellm.types.utils``): what ``apply_guardrail`` receives
  and returns (``hooks/apply_guardrail.py``).
* :class:`PiiEntityType` (``litellm.types.guardrails``): Presidio's entity names, for type hints.
* :func:`should_proceed_based_on_metadata` (``litellm.proxy.guardrails.guardrail_helpers``): the
  pre-v1 guardrail API's "did this request turn me on?".
* ``verbose_proxy_logger`` / ``verbose_logger`` / ``verbose_router_logger`` (``litellm._logging``):
  loggers under ``trioproxy.handlers``, so what a handler logs goes where the proxy's log goes.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Any, Literal, TypedDict

__all__ = [
    "CallTypes",
    "CallTypesLiteral",
    "GenericGuardrailAPIInputs",
    "GuardrailEventHooks",
    "PiiEntityType",
    "should_proceed_based_on_metadata",
    "verbose_logger",
    "verbose_proxy_logger",
    "verbose_router_logger",
]

#: the proxy's logger as LiteLLM's handler files know it (LiteLLM: ``"LiteLLM Proxy"``)
verbose_proxy_logger = logging.getLogger("trioproxy.handlers.proxy")
#: LiteLLM's SDK logger (``"LiteLLM"``)
verbose_logger = logging.getLogger("trioproxy.handlers")
#: LiteLLM's router logger (``"LiteLLM Router"``)
verbose_router_logger = logging.getLogger("trioproxy.handlers.router")


class CallTypes(StrEnum):
    """The call types of LiteLLM's ``CallTypes`` that a proxy hook can meet (values as LiteLLM's)."""

    embedding = "embedding"
    aembedding = "aembedding"
    completion = "completion"
    acompletion = "acompletion"
    atext_completion = "atext_completion"
    text_completion = "text_completion"
    image_generation = "image_generation"
    aimage_generation = "aimage_generation"
    moderation = "moderation"
    amoderation = "amoderation"
    atranscription = "atranscription"
    transcription = "transcription"
    aspeech = "aspeech"
    speech = "speech"
    rerank = "rerank"
    arerank = "arerank"
    responses = "responses"
    aresponses = "aresponses"
    pass_through_endpoint = "pass_through_endpoint"
    anthropic_messages = "anthropic_messages"
    #: trioproxy's name for the embeddings endpoint's call type (LiteLLM's proxy passes ``embeddings``)
    embeddings = "embeddings"


CallTypesLiteral = Literal[
    "embedding", "aembedding", "completion", "acompletion", "atext_completion", "text_completion",
    "image_generation", "aimage_generation", "moderation", "amoderation", "atranscription", "transcription",
    "aspeech", "speech", "rerank", "arerank", "responses", "aresponses", "pass_through_endpoint",
    "anthropic_messages", "embeddings",
]


class GuardrailEventHooks(StrEnum):
    """The modes a guardrail can run in. trioproxy runs the first four; the MCP modes are LiteLLM's
    MCP gateway, which trioproxy does not have (a config naming them is refused, saying so)."""

    pre_call = "pre_call"
    post_call = "post_call"
    during_call = "during_call"
    logging_only = "logging_only"
    pre_mcp_call = "pre_mcp_call"
    during_mcp_call = "during_mcp_call"
    post_mcp_call = "post_mcp_call"


class GenericGuardrailAPIInputs(TypedDict, total=False):
    """``apply_guardrail``'s ``inputs`` (and what it returns): the texts of a request or an answer."""

    texts: list[str]
    images: list[str]
    tools: list[dict[str, Any]]
    tool_calls: list[dict[str, Any]]
    structured_messages: list[dict[str, Any]]
    model: str | None


class PiiEntityType(StrEnum):
    """Presidio's PII entity names (LiteLLM's list); trioproxy has no Presidio built-in, this is for
    the type hints of handler files."""

    CREDIT_CARD = "CREDIT_CARD"
    CRYPTO = "CRYPTO"
    DATE_TIME = "DATE_TIME"
    EMAIL_ADDRESS = "EMAIL_ADDRESS"
    IBAN_CODE = "IBAN_CODE"
    IP_ADDRESS = "IP_ADDRESS"
    NRP = "NRP"
    LOCATION = "LOCATION"
    PERSON = "PERSON"
    PHONE_NUMBER = "PHONE_NUMBER"
    MEDICAL_LICENSE = "MEDICAL_LICENSE"
    URL = "URL"
    US_BANK_NUMBER = "US_BANK_NUMBER"
    US_DRIVER_LICENSE = "US_DRIVER_LICENSE"
    US_ITIN = "US_ITIN"
    US_PASSPORT = "US_PASSPORT"
    US_SSN = "US_SSN"
    UK_NHS = "UK_NHS"
    UK_NINO = "UK_NINO"
    ES_NIF = "ES_NIF"
    ES_NIE = "ES_NIE"
    IT_FISCAL_CODE = "IT_FISCAL_CODE"
    IT_DRIVER_LICENSE = "IT_DRIVER_LICENSE"
    IT_VAT_CODE = "IT_VAT_CODE"
    IT_PASSPORT = "IT_PASSPORT"
    IT_IDENTITY_CARD = "IT_IDENTITY_CARD"
    PL_PESEL = "PL_PESEL"
    SG_NRIC_FIN = "SG_NRIC_FIN"
    SG_UEN = "SG_UEN"
    AU_ABN = "AU_ABN"
    AU_ACN = "AU_ACN"
    AU_TFN = "AU_TFN"
    AU_MEDICARE = "AU_MEDICARE"
    IN_PAN = "IN_PAN"
    IN_AADHAAR = "IN_AADHAAR"
    IN_VEHICLE_REGISTRATION = "IN_VEHICLE_REGISTRATION"
    IN_VOTER = "IN_VOTER"
    IN_PASSPORT = "IN_PASSPORT"
    FI_PERSONAL_IDENTITY_CODE = "FI_PERSONAL_IDENTITY_CODE"


async def should_proceed_based_on_metadata(data: dict, guardrail_name: str) -> bool:
    """Whether ``data["metadata"]["guardrails"]`` (the pre-v1 form ``{"name": true, "other": false}``,
    or a list of names) turns ``guardrail_name`` on. Without such a field: ``True``, as in LiteLLM
    (the guardrail runs for every request)."""
    metadata = data.get("metadata") if isinstance(data, dict) else None
    if not isinstance(metadata, dict) or "guardrails" not in metadata:
        return True
    requested = metadata["guardrails"]
    if isinstance(requested, dict):
        return requested.get(guardrail_name) not in (None, False)
    if isinstance(requested, list):
        return any(item == guardrail_name or (isinstance(item, dict) and guardrail_name in item)
                   for item in requested)
    return False
