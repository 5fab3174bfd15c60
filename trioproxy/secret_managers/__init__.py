"""Secrets from secret managers: HashiCorp Vault, AWS Secrets Manager and KMS, Azure Key Vault,
Google Secret Manager (``docs/secrets.md``).

* :mod:`.base`: the interface (``read(name) -> value | None``) and its typed errors;
* one module per manager (:mod:`.aws`, :mod:`.vault`, :mod:`.azure`, :mod:`.google`), each using the
  provider's maintained client behind an optional extra (``pip install 'trioproxy[aws]'`` …);
* :mod:`.settings`: ``general_settings.key_management_system`` / ``key_management_settings``;
* :mod:`.resolve`: ``os.environ/NAME`` in a raw config read through the manager, once, at startup;
* :mod:`.kms_env`: ``USE_AWS_KMS`` + ``LITELLM_SECRET_AWS_KMS_<NAME>`` decrypted before the config loads;
* :mod:`.refresh`: a Trio service reading the referenced secrets again on an interval.

This ``__init__`` imports nothing else on purpose: ``config/model.py`` imports from :mod:`.base`, and
the provider clients are optional.
"""

from .base import (
    SecretAccessDenied,
    SecretManager,
    SecretManagerError,
    SecretManagerMisconfigured,
    SecretManagerUnreachable,
    SecretUndecryptable,
)

__all__ = [
    "SecretAccessDenied",
    "SecretManager",
    "SecretManagerError",
    "SecretManagerMisconfigured",
    "SecretManagerUnreachable",
    "SecretUndecryptable",
]
