"""LiteLLM's logging integrations by name, built into trioproxy (docs/logging.md has the table).

``callbacks: ["langfuse"]`` (success and failure), ``success_callback: ["langfuse"]`` (success
only) and ``failure_callback`` (failure only) name them as in LiteLLM; :func:`make_integration`
builds one from the config and the environment (a missing key is a startup error naming the
variable). Each is a CustomLogger object the logging sink calls off the request path.
``general_settings.alerting: ["slack"]`` is :func:`alerting_integrations`.
"""

from __future__ import annotations

from collections.abc import Callable

from ...config import ProxyConfig
from ...config.logging_keys import BUILTIN_LOGGING_INTEGRATIONS
from .base import Integration, IntegrationError, IntegrationSettings
from .deepeval import DeepEvalLogger
from .galileo import GalileoLogger
from .http_loggers import DatadogLogger, GenericAPILogger, LangfuseLogger, LangsmithLogger
from .lunary import LunaryLogger
from .usage_loggers import AthinaLogger, OpenMeterLogger

__all__ = ["INTEGRATIONS", "REQUIRED_ENV", "Integration", "IntegrationError", "alerting_integrations",
           "make_integration"]


def _s3(name: str) -> Callable[[IntegrationSettings], Integration]:
    def make(settings: IntegrationSettings) -> Integration:
        from .s3 import S3Logger
        return S3Logger(settings, name)
    return make


def _aws_sqs(settings: IntegrationSettings) -> Integration:
    from .aws_sqs import SQSLogger
    return SQSLogger(settings)


def _otel(settings: IntegrationSettings) -> Integration:
    from .otel import OpenTelemetryLogger
    return OpenTelemetryLogger(settings)


def _otel_vendor(name: str) -> Callable[[IntegrationSettings], Integration]:
    def make(settings: IntegrationSettings) -> Integration:
        from . import otel_vendors
        cls = {"arize": otel_vendors.ArizeLogger, "arize_phoenix": otel_vendors.ArizePhoenixLogger,
               "langtrace": otel_vendors.LangtraceLogger}[name]
        return cls(settings)
    return make


def _gcs_bucket(settings: IntegrationSettings) -> Integration:
    from .gcs_bucket import GCSBucketLogger
    return GCSBucketLogger(settings)


def _gcs_pubsub(settings: IntegrationSettings) -> Integration:
    from .gcs_bucket import GCSPubSubLogger
    return GCSPubSubLogger(settings)


#: callback name → factory
INTEGRATIONS: dict[str, Callable[[IntegrationSettings], Integration]] = {
    "langfuse": LangfuseLogger,
    "otel": _otel,
    "datadog": DatadogLogger,
    "s3": _s3("s3"),
    "s3_v2": _s3("s3_v2"),
    "generic_api": GenericAPILogger,
    "langsmith": LangsmithLogger,
    "gcs_bucket": _gcs_bucket,
    "openmeter": OpenMeterLogger,
    "athina": AthinaLogger,
    "aws_sqs": _aws_sqs,
    "arize": _otel_vendor("arize"),
    "arize_phoenix": _otel_vendor("arize_phoenix"),
    "langtrace": _otel_vendor("langtrace"),
    "lunary": LunaryLogger,
    "gcs_pubsub": _gcs_pubsub,
    "deepeval": DeepEvalLogger,
    "galileo": GalileoLogger,
}

#: the environment each needs (placeholders for ``trioproxy check``-style runs, e.g. the corpus)
REQUIRED_ENV: dict[str, dict[str, str]] = {
    "langfuse": {"LANGFUSE_PUBLIC_KEY": "pk-lf-placeholder", "LANGFUSE_SECRET_KEY": "sk-lf-placeholder"},
    "otel": {},
    "datadog": {"DD_API_KEY": "placeholder", "DD_SITE": "datadoghq.com"},
    "s3": {},
    "s3_v2": {},
    "generic_api": {"GENERIC_LOGGER_ENDPOINT": "http://127.0.0.1:9/log"},
    "langsmith": {"LANGSMITH_API_KEY": "placeholder"},
    "gcs_bucket": {"GCS_BUCKET_NAME": "placeholder-bucket"},
    "openmeter": {"OPENMETER_API_KEY": "placeholder"},
    "athina": {"ATHINA_API_KEY": "placeholder"},
    "aws_sqs": {},
    "arize": {"ARIZE_SPACE_KEY": "placeholder", "ARIZE_API_KEY": "placeholder"},
    "arize_phoenix": {"PHOENIX_API_KEY": "placeholder"},
    "langtrace": {"LANGTRACE_API_KEY": "placeholder"},
    "lunary": {"LUNARY_PUBLIC_KEY": "placeholder"},
    "gcs_pubsub": {"GCS_PUBSUB_PROJECT_ID": "placeholder-project", "GCS_PUBSUB_TOPIC_ID": "placeholder-topic"},
    "deepeval": {"CONFIDENT_API_KEY": "placeholder"},
    "galileo": {"GALILEO_BASE_URL": "http://127.0.0.1:9", "GALILEO_PROJECT_ID": "placeholder",
                "GALILEO_USERNAME": "placeholder", "GALILEO_PASSWORD": "placeholder"},
    "slack": {"SLACK_WEBHOOK_URL": "http://127.0.0.1:9/slack"},
}


assert set(INTEGRATIONS) == set(BUILTIN_LOGGING_INTEGRATIONS), "config/logging_keys.py names the same ones"


def make_integration(name: str, config: ProxyConfig | None) -> Integration | None:
    """The built-in integration ``name`` (a new object), or None when trioproxy has none by that name.
    Raises HandlerLoadError when its settings or environment are missing."""
    factory = INTEGRATIONS.get(name)
    return None if factory is None else factory(IntegrationSettings(config))


def alerting_integrations(config: ProxyConfig) -> list[Integration]:
    """``general_settings.alerting``: ``slack`` (the only one trioproxy has; others are refused
    when the config loads)."""
    names = config.general_settings.get("alerting") or ()
    if "slack" not in names:
        return []
    from .slack import SlackAlerting
    return [SlackAlerting(IntegrationSettings(config))]
