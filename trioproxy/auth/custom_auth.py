"""``general_settings.custom_auth``: a user function that decides who is calling, as in LiteLLM.

The function is ``async def user_api_key_auth(request, api_key)`` (LiteLLM's signature; ``request``
is :class:`~.request.Request`, ``api_key`` the key the client sent without ``Bearer``, ``""`` when
none). :class:`CustomAuth` calls it and turns its answer into one of three outcomes, as LiteLLM's
``user_api_key_auth.py`` (and its enterprise ``custom_auth_settings``) do:

* a ``UserAPIKeyAuth`` (or a dict of its fields): that is the caller. Its ``api_key`` is hashed
  (SHA-256, never kept in clear; a 64-hex value is taken as a hash already); without one, the hash
  of the presented key. The composition root's ``to_record`` turns it into the record every other
  check reads (models, ``allowed_routes``, role, limits and budgets: ``docs/access.md``);
* a ``str``: a key for trioproxy's own key auth (master key, virtual key, JWT) — LiteLLM's "custom
  auth + virtual keys";
* ``None`` (:data:`FALL_THROUGH`): only in mode ``auto``, when the function raised or returned
  nothing: trioproxy's own key auth decides, as if there were no custom auth.

``custom_auth_settings.mode``: ``on`` (the default: the function alone decides), ``auto`` (the
function first; if it raises, the proxy's key auth), ``off`` (not called). ``timeout`` (trioproxy's,
seconds, default 10): a function that does not answer in time is a ``503 custom_auth_timeout``.

Errors (mode ``on``): an error of the proxy's own (``ProxyException``, ``HTTPException``,
``AuthenticationError``…) is answered as it is; any other exception is LiteLLM's ``401
Authentication Error, <message>`` — with the presented key masked out of the message, and never
logged; a return value of another type is a ``500 custom_auth_error`` (a bug in the function, logged
with its type). The function can never crash the server: everything it raises ends here.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import trio

from ..errors import AuthenticationError, InternalServerError, ProxyError, ServiceUnavailableError
from ..masking import mask_secret
from .identity import Identity, UserAPIKeyAuth, hash_key, is_key_hash
from .request import Request

__all__ = ["CustomAuth", "CustomAuthSettings", "FALL_THROUGH", "custom_auth_settings"]

log = logging.getLogger("trioproxy.access")

Mode = Literal["on", "off", "auto"]
#: what :meth:`CustomAuth.decide` returns when trioproxy's own key auth should decide (mode auto)
FALL_THROUGH = None
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class CustomAuthSettings:
    """``general_settings.custom_auth_settings`` (the schema checked the types)."""

    mode: Mode = "on"
    timeout: float = DEFAULT_TIMEOUT


def custom_auth_settings(general_settings: Mapping[str, Any]) -> CustomAuthSettings:
    raw = general_settings.get("custom_auth_settings") or {}
    return CustomAuthSettings(mode=raw.get("mode", "on"), timeout=float(raw.get("timeout", DEFAULT_TIMEOUT)))


def check_function(function: Any, dotted: str) -> str | None:
    """Why ``function`` cannot be a custom auth function, or ``None`` (``trioproxy check`` says it)."""
    if not callable(function):
        return f"general_settings.custom_auth: {dotted} is not a function"
    method = None if inspect.isfunction(function) else type(function).__dict__.get("__call__")
    if not (inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(method)):
        return (f"general_settings.custom_auth: {dotted} must be an async function "
                "(async def user_api_key_auth(request, api_key)), as in LiteLLM")
    return None


class CustomAuth:
    """The configured function, called with a deadline; its answer as an outcome (module docstring).

    ``to_record(user, token)``: the record (``store.key_cache.AuthRecord``) of a returned
    ``UserAPIKeyAuth`` whose hashed key is ``token``; handed in by the composition root, so this
    package stays free of the store.
    """

    def __init__(self, function: Callable[..., Any], name: str, settings: CustomAuthSettings,
                 to_record: Callable[[UserAPIKeyAuth, str], Any]) -> None:
        self.function = function
        self.name = name
        self.settings = settings
        self.to_record = to_record

    async def decide(self, request: Request, api_key: str) -> Identity | str | None:
        """The caller, a key for the proxy's own key auth, or :data:`FALL_THROUGH`; or raise 401/500/503."""
        auto = self.settings.mode == "auto"
        answer: Any = None
        with trio.move_on_after(self.settings.timeout) as deadline:
            try:
                answer = await self.function(request=request, api_key=api_key)
            except (trio.Cancelled, KeyboardInterrupt):
                raise
            except ProxyError as err:
                if auto:
                    return FALL_THROUGH
                raise _masked(err, api_key) from None
            except BaseException as exc:   # a crashing function is a refusal, never a crashed server
                if auto:
                    return FALL_THROUGH
                message = _mask(str(exc) or type(exc).__name__, api_key)
                raise AuthenticationError(f"Authentication Error, {message}", code="custom_auth_failed") from None
        if deadline.cancelled_caught:
            log.error("general_settings.custom_auth %s did not answer within %g s (custom_auth_settings.timeout)",
                      self.name, self.settings.timeout)
            raise ServiceUnavailableError(f"The custom authentication function did not answer within "
                                          f"{self.settings.timeout:g} s.", code="custom_auth_timeout")
        if isinstance(answer, str):
            return answer
        if isinstance(answer, Mapping):
            answer = UserAPIKeyAuth(**answer)
        if isinstance(answer, UserAPIKeyAuth):
            return self._identity(answer, api_key)
        if answer is None:
            if auto:
                return FALL_THROUGH
            raise AuthenticationError("Authentication Error, the custom authentication function returned no caller.",
                                      code="custom_auth_failed")
        if auto:
            return FALL_THROUGH
        log.error("general_settings.custom_auth %s returned a %s; it must return a UserAPIKeyAuth or a key (str)",
                  self.name, type(answer).__name__)
        raise InternalServerError("The custom authentication function returned something that is not a caller.",
                                  code="custom_auth_error")

    def _identity(self, answer: UserAPIKeyAuth, presented: str) -> Identity:
        user = UserAPIKeyAuth(**{name: getattr(answer, name) for name in UserAPIKeyAuth.__dataclass_fields__})
        key = user.api_key
        token = key if isinstance(key, str) and is_key_hash(key) else hash_key(key if isinstance(key, str) else presented)
        user.api_key = token   # hooks, logs and spend rows see the hash only
        if user.key_alias is None and isinstance(key, str) and key:
            user.key_alias = mask_secret(key) if not is_key_hash(key) else None
        record = self.to_record(user, token)
        if user.blocked:
            raise AuthenticationError("Authentication Error, the key is blocked (custom_auth).", code="key_blocked")
        expires_ts = getattr(record, "expires_ts", None)
        if expires_ts is not None and expires_ts < time.time():
            raise AuthenticationError(f"Authentication Error - Expired Key. Key Expiry time {user.expires}",
                                      code="expired_key")
        return Identity.custom(record, user)


def _mask(text: str, key: str) -> str:
    return text.replace(key, mask_secret(key)) if key and len(key) >= 4 else text


def _masked(err: ProxyError, key: str) -> ProxyError:
    if key and len(key) >= 4 and key in err.message:
        err.message = _mask(err.message, key)
        err.args = (err.message,)
    return err
