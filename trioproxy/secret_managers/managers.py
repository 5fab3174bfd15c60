"""``key_management_system`` → the manager object (each provider's module is imported only here)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .base import SecretManager
from .settings import KeyManagementSettings

__all__ = ["build_manager"]


def build_manager(settings: KeyManagementSettings, environ: Mapping[str, str] | None = None) -> SecretManager:
    """Build the configured manager. Raises ``SecretManagerError`` (a missing variable or client).

    Building does no network call (except assuming an AWS role when ``aws_role_name`` is set): the
    first read does. So a missing ``GOOGLE_SECRET_MANAGER_PROJECT_ID`` is reported at once.
    """
    env = environ if environ is not None else os.environ
    system = settings.system
    if system in ("aws_secret_manager", "aws_secret_manager_v2"):
        from .aws import AWSSecretsManager

        return AWSSecretsManager(settings.options, system)
    if system == "aws_kms":
        from .aws import AWSKMS

        return AWSKMS(settings.options, env)
    if system == "hashicorp_vault":
        from .vault import HashicorpVault

        return HashicorpVault(env)
    if system == "azure_key_vault":
        from .azure import AzureKeyVault

        return AzureKeyVault(env)
    if system == "google_secret_manager":
        from .google import GoogleSecretManager

        return GoogleSecretManager(env)
    raise ValueError(f"unknown key_management_system {system!r}")   # settings.py validated it
