"""The one small interface every secret manager implements, and the errors it may raise.

A manager answers one question: ``read(name) -> value | None``. ``None`` means "this manager does
not have that name" and makes the caller fall back to the environment, as LiteLLM does. Anything
else that stops a read is one of four typed errors, so startup can say precisely what went wrong:

====================================  =======================================================
error                                 when
====================================  =======================================================
:class:`SecretAccessDenied`           the manager refused (403, bad token, no permission)
:class:`SecretManagerUnreachable`     connection refused or reset, timeout, 5xx
:class:`SecretUndecryptable`          the value exists but cannot be decrypted or decoded
:class:`SecretManagerMisconfigured`   a required variable is missing, a client is not installed,
                                      no credentials can be found
====================================  =======================================================

Every error names the manager, the secret (when there is one) and the reason; none ever carries the
value, and the reasons are built from error *codes* and statuses, never from a provider's response
text (which could echo what was sent). Calls are synchronous: managers are called at startup
(before ``trio.run``) and, later, only through ``trio.to_thread.run_sync`` (``refresh.py``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Protocol

__all__ = [
    "CONNECT_TIMEOUT",
    "READ_TIMEOUT",
    "STARTUP_DEADLINE",
    "SecretAccessDenied",
    "SecretManager",
    "SecretManagerError",
    "SecretManagerMisconfigured",
    "SecretManagerUnreachable",
    "SecretUndecryptable",
    "import_client",
]

#: every client is built with these (and with retries off), so one unanswered call ends in seconds
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 4.0
#: all startup reads together: a manager that does not answer stops startup well within 10 s
STARTUP_DEADLINE = 7.0


class SecretManager(Protocol):
    #: the ``key_management_system`` value, used in every message (``hashicorp_vault``, …)
    name: str

    def read(self, name: str) -> str | None:
        """The value of secret ``name``, or None when the manager does not have it.

        Raises a :class:`SecretManagerError` subclass for everything else. Blocking: never call it
        on the Trio thread.
        """
        ...


class SecretManagerError(Exception):
    """A read failed. ``str(error)`` is safe to log: it never contains a secret value."""

    kind = "failed"

    def __init__(self, manager: str, reason: str, *, secret: str | None = None) -> None:
        self.manager = manager
        self.reason = reason
        self.secret = secret
        about = f"reading {secret!r} from " if secret else ""
        super().__init__(f"{about}{manager}: {self.kind}: {reason}")

    def for_secret(self, secret: str) -> SecretManagerError:
        """The same error, naming the secret being read (adapters raise without knowing it)."""
        if self.secret == secret:
            return self
        return type(self)(self.manager, self.reason, secret=secret)


class SecretAccessDenied(SecretManagerError):
    kind = "access denied"


class SecretManagerUnreachable(SecretManagerError):
    kind = "unreachable"


class SecretUndecryptable(SecretManagerError):
    kind = "cannot decrypt"


class SecretManagerMisconfigured(SecretManagerError):
    kind = "misconfigured"


def import_client(manager: str, module: str, extra: str) -> ModuleType:
    """Import a provider client lazily; a missing one is a config error with the pip line."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SecretManagerMisconfigured(
            manager, f"its client library is not installed ({exc.name or module}): "
                     f"pip install 'trioproxy[{extra}]'") from None
