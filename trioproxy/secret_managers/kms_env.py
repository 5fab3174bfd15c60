"""LiteLLM's "AWS Key Manager v2": encrypted environment variables, decrypted before the config loads.

With ``USE_AWS_KMS="True"``, every ``LITELLM_SECRET_AWS_KMS_<NAME>=<base64 ciphertext>`` is decrypted
with KMS ``Decrypt`` and exposed to this process (and the workers it starts) as ``<NAME>``; a value
written ``aws_kms/<base64 ciphertext>`` in any variable is decrypted in place, as LiteLLM does. So
``DATABASE_URL`` or ``LITELLM_MASTER_KEY`` never sit in the environment in clear, and the config
refers to them as usual (``os.environ/DATABASE_URL``).

The KMS client is the one of :mod:`.aws` (region, credentials and ``AWS_ENDPOINT_URL_KMS`` as there).
Unlike LiteLLM, a variable that cannot be decrypted stops startup with its name and the reason
(the ciphertext and the plaintext are never shown); all are decrypted concurrently under the startup
deadline. ``cli/common.py`` calls :func:`decrypt_kms_environment` before it loads the config.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping

from ..errors import ConfigError
from .base import SecretManagerError
from .settings import KeyManagementSettings

__all__ = ["ENV_PREFIX", "KMSEnvironmentError", "decrypt_kms_environment"]

log = logging.getLogger("trioproxy.secrets")

ENV_PREFIX = "LITELLM_SECRET_AWS_KMS_"
VALUE_PREFIX = "aws_kms/"
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


class KMSEnvironmentError(ConfigError):
    """Every variable that could not be decrypted, one line each (no values): a startup error."""


def _targets(environ: MutableMapping[str, str]) -> dict[str, str]:
    """``{source variable: target variable}``."""
    targets: dict[str, str] = {}
    for key, value in environ.items():
        if key.upper().startswith(ENV_PREFIX):
            targets[key] = key[len(ENV_PREFIX):]
        elif value.startswith(VALUE_PREFIX):
            targets[key] = key
    return targets


def decrypt_kms_environment(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Decrypt into ``environ`` (``os.environ``); returns the names set. Raises KMSEnvironmentError."""
    env = environ if environ is not None else os.environ
    flag = env.get("USE_AWS_KMS")
    if flag is None or flag.strip().lower() in _FALSE:
        return []
    if flag.strip().lower() not in _TRUE:
        raise KMSEnvironmentError([f"USE_AWS_KMS: expected True or False, got {flag!r}"])
    targets = _targets(env)
    if not targets:
        log.warning("USE_AWS_KMS is set, but no %s<NAME> variable (or aws_kms/ value) is in the environment",
                    ENV_PREFIX)
        return []
    empty = [source for source, target in targets.items() if not target]
    if empty:
        raise KMSEnvironmentError([f"{name}: names no variable (expected {ENV_PREFIX}<NAME>)" for name in empty])

    from .aws import kms_client, kms_decrypt
    from .resolve import SecretResolver, read_all

    try:
        client = kms_client({})
    except SecretManagerError as exc:
        raise KMSEnvironmentError([f"USE_AWS_KMS: {exc}"]) from None

    class _Decryptor:
        name = "aws_kms"

        def read(self, source: str) -> str | None:
            return kms_decrypt(client, env[source])

    resolver = SecretResolver(KeyManagementSettings("aws_kms"), _Decryptor(), env)
    results, errors = read_all(resolver, targets)
    if errors:
        raise KMSEnvironmentError([f"{source}: cannot decrypt with aws_kms: {error.kind}: {error.reason}"
                                   for source, error in sorted(errors.items())])
    for source, target in targets.items():
        value = results[source][0]
        assert value is not None
        env[target] = value
    names = sorted(targets.values())
    log.info("USE_AWS_KMS: decrypted %d variable(s) with aws_kms: %s", len(names), ", ".join(names))
    return names
