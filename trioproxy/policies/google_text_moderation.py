"""``google_text_moderation``: Google Cloud Natural Language text moderation rejects harmful prompts.

Config (LiteLLM's names, plus the spec's spellings)::

    litellm_settings:
      callbacks: ["google_text_moderation"]
      google_moderation_confidence_threshold: 0.8   # default for every category (LiteLLM's default)
      toxic_confidence_threshold: 0.1               # LiteLLM's code: <category>_confidence_threshold
      violent_threshold: 0.1                        # the spec's table: <category>_threshold
      google_moderation_fail_open: false            # trioproxy's: see moderation_common.py
      google_moderation_timeout: 10

Environment: ``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account file, as for Vertex AI; required)
and ``GOOGLE_TEXT_MODERATION_API_BASE`` (default ``https://language.googleapis.com``).

For each request, the user's text (every message's text, the completion ``prompt``, the embeddings
``input``, joined by newlines; LiteLLM reads chat messages only) goes to
``POST {base}/v1/documents:moderateText`` as a ``PLAIN_TEXT`` document, with an OAuth token that
``google-auth`` gets from the service account's own ``token_uri`` (in a worker thread, never on the
Trio thread; kept until it expires). Each returned category's name is normalised as LiteLLM does
("Death, Harm & Tragedy" → ``death_harm_and_tragedy``); a confidence **above** its threshold →
400 ``guardrail_violation``: ``Violated content safety policy`` with the category and its score. A
category set in both spellings with different values is a startup error.

Runs as a moderation (during-call) hook racing the upstream, through the app's pooled httpx client;
fail mode, time limit and metrics as in :mod:`.moderation_common`. Needs ``pip install
'trioproxy[google]'`` (google-auth). The text is never logged, only verdicts and category names.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
import trio

from ..config import ProxyConfig
from ..config.model import DEFAULT_MODERATION_TIMEOUT
from ..config.moderation_keys import GOOGLE_CATEGORIES, threshold_keys
from ..errors import GuardrailViolationError
from ..hooks.base import CustomLogger
from ..hooks.loader import HandlerLoadError
from ..prompt import text_slots
from .moderation_common import ModerationUnavailable, fail_or_pass, moderation_timeout

__all__ = ["GoogleTextModeration", "category_key", "google_text_moderation_from_config"]

log = logging.getLogger("trioproxy.policies.google_text_moderation")

NAME = "google_text_moderation"
MESSAGE = "Violated content safety policy"
DEFAULT_API_BASE = "https://language.googleapis.com"
DEFAULT_THRESHOLD = 0.8
SCOPES = ("https://www.googleapis.com/auth/cloud-language", "https://www.googleapis.com/auth/cloud-platform")


def category_key(name: str) -> str:
    """LiteLLM's normalisation: "Firearms & Weapons" → ``firearms_and_weapons``."""
    return name.lower().replace("&", "and").replace(",", "").replace(" ", "_")


class _TokenSource:
    """A service account's access token, refreshed in a worker thread when it is missing or expired."""

    def __init__(self, credentials: Any, request: Any) -> None:
        self.credentials = credentials
        self.request = request
        self.lock = trio.Lock()
        self.limiter = trio.CapacityLimiter(1)

    async def token(self) -> str:
        async with self.lock:   # one refresh at a time; the others wait for its token
            if not self.credentials.valid:
                try:
                    await trio.to_thread.run_sync(self.credentials.refresh, self.request,
                                                  limiter=self.limiter, abandon_on_cancel=True)
                except Exception as exc:
                    raise ModerationUnavailable(f"could not get an access token ({type(exc).__name__})") from None
            return str(self.credentials.token)


class GoogleTextModeration(CustomLogger):
    name = NAME

    def __init__(self, http_client: httpx.AsyncClient | None, tokens: _TokenSource, *, api_base: str = DEFAULT_API_BASE,
                 thresholds: dict[str, float] | None = None, default_threshold: float = DEFAULT_THRESHOLD,
                 fail_open: bool = False, timeout: float = DEFAULT_MODERATION_TIMEOUT) -> None:
        super().__init__()
        #: the app's pooled client (None while the proxy is not serving, e.g. ``trioproxy check``)
        self.http_client = http_client
        self.tokens = tokens
        self.url = api_base.rstrip("/") + "/v1/documents:moderateText"
        self.thresholds = dict(thresholds or {})
        self.default_threshold = default_threshold
        self.fail_open = fail_open
        self.timeout = timeout

    def threshold(self, category: str) -> float:
        return self.thresholds.get(category, self.default_threshold)

    async def async_moderation_hook(self, data: dict, user_api_key_dict: Any, call_type: str) -> None:
        text = "\n".join(s.text for s in text_slots(data) if s.text.strip())
        if not text:
            return None
        try:
            categories = await self._moderate(text)
        except ModerationUnavailable as exc:
            return fail_or_pass(self.name, self.fail_open, "google_moderation_fail_open", exc, log)
        violations = [(name, confidence) for name, confidence in categories
                      if confidence > self.threshold(category_key(name))]
        if not violations:
            return None
        names = ", ".join(f"{name} (confidence {confidence:.2f} > {self.threshold(category_key(name)):g})"
                          for name, confidence in violations)
        log.info("%s: rejected (categories: %s)", self.name, ", ".join(category_key(n) for n, _ in violations))
        raise GuardrailViolationError(f"{MESSAGE}: {names}", guardrail=self.name)

    async def _moderate(self, text: str) -> list[tuple[str, float]]:
        client = self.http_client
        if client is None:
            raise ModerationUnavailable("the proxy's HTTP client is not running")
        response = None
        with trio.move_on_after(self.timeout):
            token = await self.tokens.token()
            body = orjson.dumps({"document": {"type": "PLAIN_TEXT", "content": text}})
            try:
                response = await client.post(self.url, content=body, timeout=self.timeout, headers={
                    "content-type": "application/json", "authorization": f"Bearer {token}"})
            except httpx.HTTPError as exc:
                raise ModerationUnavailable(f"request failed: {type(exc).__name__}") from None
        if response is None:
            raise ModerationUnavailable(f"no answer within google_moderation_timeout={self.timeout:g} s")
        if response.status_code != 200:
            if response.status_code in (401, 403):
                self.tokens.credentials.token = None   # refused: get a fresh token next time
            raise ModerationUnavailable(f"it answered HTTP {response.status_code}")
        try:
            answer = orjson.loads(response.content)
            categories = answer.get("moderationCategories", [])
            return [(str(c["name"]), float(c.get("confidence", 0.0))) for c in categories]
        except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
            raise ModerationUnavailable("its answer is not a moderateText response") from None


def _thresholds(settings: Mapping[str, float]) -> dict[str, float]:
    thresholds: dict[str, float] = {}
    for category in GOOGLE_CATEGORIES:
        values = {key: settings[key] for key in threshold_keys(category) if settings.get(key) is not None}
        if len(set(values.values())) > 1:
            spelled = " and ".join(f"{k}={v:g}" for k, v in values.items())
            raise HandlerLoadError(f"litellm_settings: {spelled} disagree (both set the threshold of "
                                   f"{category!r}; keep one)")
        if values:
            thresholds[category] = float(next(iter(values.values())))
    return thresholds


def google_text_moderation_from_config(config: ProxyConfig,
                                       http_client: httpx.AsyncClient | None) -> GoogleTextModeration:
    """The ``google_text_moderation`` factory for ``builtins.py``."""
    settings = config.litellm
    path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if not path:
        raise HandlerLoadError("google_text_moderation needs the environment variable GOOGLE_APPLICATION_CREDENTIALS "
                               "(the path of a Google service-account file)")
    try:
        import google.auth
        from google.auth.transport.requests import Request
    except ImportError:
        raise HandlerLoadError("google_text_moderation needs google-auth: pip install 'trioproxy[google]'") from None
    try:
        credentials, _project = google.auth.load_credentials_from_file(path, scopes=list(SCOPES))
    except Exception as exc:
        raise HandlerLoadError(f"GOOGLE_APPLICATION_CREDENTIALS: cannot load {path}: {type(exc).__name__}") from None
    timeout = moderation_timeout(config, "google_moderation_timeout")

    class _BoundedRequest(Request):  # type: ignore[misc]
        """google-auth's token request with our time limit (its default is 120 s)."""

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = timeout
            return super().__call__(*args, **kwargs)

    api_base = (os.environ.get("GOOGLE_TEXT_MODERATION_API_BASE") or DEFAULT_API_BASE).strip()
    if not api_base.startswith(("http://", "https://")):
        raise HandlerLoadError(f"GOOGLE_TEXT_MODERATION_API_BASE must be an http(s) URL, got {api_base!r}")
    default = settings.google_moderation_confidence_threshold
    return GoogleTextModeration(
        http_client, _TokenSource(credentials, _BoundedRequest()), api_base=api_base,
        thresholds=_thresholds(settings.google_thresholds),
        default_threshold=float(default) if default is not None else DEFAULT_THRESHOLD,
        fail_open=settings.google_moderation_fail_open, timeout=timeout,
    )
