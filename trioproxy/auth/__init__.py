"""Authentication: who is calling, decided at one place for every route.

``identity.py``: :class:`~.identity.UserAPIKeyAuth` (what hooks receive) and ``hash_key``.
``roles.py``: ``LitellmUserRoles`` (LiteLLM's role names, for handler files).
``master.py``: :class:`~.master.Authenticator`, the one entry point (master key today; virtual keys
and JWT plug in here, issues #10 and #12). Modules are private by convention: import the names
below, or the handler API's ``trioproxy.UserAPIKeyAuth``.

May import: ``errors``, ``masking`` (and, when virtual keys arrive, ``store``).
"""

from .identity import UserAPIKeyAuth, hash_key
from .master import Authenticator, authenticate, extract_key
from .roles import LitellmUserRoles

__all__ = ["Authenticator", "LitellmUserRoles", "UserAPIKeyAuth", "authenticate", "extract_key", "hash_key"]
