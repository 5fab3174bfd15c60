"""What a provider adapter is: pure translation between the OpenAI API and one native API.

Why this split: every native provider differs in four places only — how a request is written, how
an answer is read back, how its stream is framed, and how its errors look. Those four parts are
pure functions of bytes and dicts (no sockets, no clock, no threads), so each can be unit-tested
exhaustively and the I/O around them (the HTTP/1.1 pool, cancellation, timeouts, closing an
abandoned stream) is written once, in :mod:`.provider`. The only step allowed to do I/O is
:meth:`Adapter.authorize` (SigV4 credentials from the AWS chain, a Google OAuth token), and
adapters run it off the Trio thread.

Life of one call (see :class:`~trioproxy.upstream.providers.provider.AdapterProvider`):

1. ``configure`` (once per deployment): ``litellm_params`` + environment → the adapter's frozen
   settings object, or :class:`ProviderConfigError` listing every problem.
2. the OpenAI body is checked against :meth:`Adapter.supported_params` (``drop_params`` honoured,
   otherwise a 400 naming the parameter and the provider) — see :mod:`.params`;
3. ``build`` → one or more :class:`NativeRequest` (several only where the native API takes one
   input per request, e.g. Titan embeddings); ``authorize`` adds credentials;
4. ``parse`` (whole answers) or ``decoder`` (streams) → OpenAI JSON / chunk dicts;
5. ``error`` maps a native error status and body to the proxy error the client receives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ...errors import APIConnectionError, ProxyError

__all__ = [
    "Adapter",
    "Call",
    "NativeAnswer",
    "NativeRequest",
    "ProviderConfigError",
    "StreamDecoder",
    "StreamInterruptedError",
]


class ProviderConfigError(ValueError):
    """A deployment's provider settings are incomplete or wrong; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class StreamInterruptedError(APIConnectionError):
    """The native stream ended (cleanly at the HTTP level) without its terminator.

    The answer is incomplete: the relay must end the client's stream with an error event, never
    with ``[DONE]``.
    """

    default_code = "upstream_stream_interrupted"


@dataclass(slots=True)
class NativeRequest:
    """One HTTP request to the provider, ready to send (after :meth:`Adapter.authorize`)."""

    method: str
    url: str
    headers: dict[str, str]     # lower-case names
    body: bytes = b""


@dataclass(slots=True)
class NativeAnswer:
    """One complete HTTP answer from the provider."""

    status: int
    headers: dict[str, str]     # lower-case names
    body: bytes


@dataclass(slots=True)
class Call:
    """One OpenAI request on its way to a provider (after the parameter policy ran)."""

    endpoint: str               # "chat/completions" | "embeddings" | "completions"
    body: dict[str, Any]        # the OpenAI body, cleaned; ``model`` is the native model id
    stream: bool
    settings: Any               # what the adapter's ``configure`` returned
    created: int = 0            # unix time for ``created`` fields (fixed per call)
    call_id: str = ""           # used for ``id`` fields when the provider gives none
    extras: dict[str, Any] = field(default_factory=dict)   # adapter-private state (e.g. tool names)

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")


class StreamDecoder(ABC):
    """Native stream bytes → OpenAI ``chat.completion.chunk`` dicts, incrementally.

    ``finished`` becomes true when the native terminator was seen (Anthropic ``message_stop``,
    Ollama ``"done": true``, Bedrock ``messageStop``, ``[DONE]``…). :meth:`close` is called at the
    end of the body: it returns the last chunks (always a usage chunk with ``choices: []`` when the
    provider reported usage) or raises :class:`StreamInterruptedError` when the terminator never
    came. A native error event raises the mapped :class:`ProxyError` from :meth:`feed`.
    """

    finished: bool = False

    @abstractmethod
    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Consume the next piece of the body; return the chunks it completes."""

    def close(self) -> list[dict[str, Any]]:
        """The body ended: the final chunks, or :class:`StreamInterruptedError`."""
        if not self.finished:
            raise StreamInterruptedError(self.interrupted_message())
        return []

    def interrupted_message(self) -> str:
        return "The upstream stream ended without its end marker: the answer is incomplete."


class Adapter(ABC):
    """One provider's translation. Instances are stateless and shared by every deployment."""

    #: the provider's name in messages ("anthropic", "bedrock", …)
    name: ClassVar[str]
    #: the ``litellm_params`` this adapter reads (never forwarded into a request body)
    settings_names: ClassVar[frozenset[str]] = frozenset()
    #: those of them that are credentials (added to the secret scrubber)
    secret_settings: ClassVar[frozenset[str]] = frozenset({"api_key"})
    #: the OpenAI endpoints this provider can serve
    endpoints: ClassVar[frozenset[str]] = frozenset({"chat/completions"})
    #: True when ``authorize`` may do I/O and therefore runs in a worker thread
    authorize_in_thread: ClassVar[bool] = False

    @abstractmethod
    def configure(self, prefix: str, model: str, params: Mapping[str, Any],
                  environ: Mapping[str, str]) -> Any:
        """``litellm_params`` (+ environment fallbacks) → settings; pure, raises ProviderConfigError."""

    def endpoints_for(self, settings: Any) -> frozenset[str]:
        """The endpoints one deployment serves (a subset of ``endpoints``)."""
        return self.endpoints

    @abstractmethod
    def supported_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        """The OpenAI request fields this provider can take on ``endpoint``."""

    def native_params(self, endpoint: str, settings: Any) -> frozenset[str]:
        """Provider-specific (non-OpenAI) fields a client may send and the adapter forwards."""
        return frozenset()

    def passes_unknown_params(self, settings: Any) -> bool:
        """True for OpenAI-compatible servers: unknown fields go through as LiteLLM sends them."""
        return False

    def secrets(self, settings: Any) -> list[str]:
        """Every credential held by ``settings`` (for the scrubber)."""
        return []

    def pricing_model(self, settings: Any, answer_model: str | None) -> str | None:
        """The name to price a call with (Azure: ``base_model`` or the answer's dated model)."""
        return None

    @abstractmethod
    def build(self, call: Call) -> list[NativeRequest]:
        """Pure: the native request(s) for ``call``, without credentials that need I/O."""

    def sign(self, settings: Any, request: NativeRequest) -> NativeRequest:
        """Credentials that may need I/O (runs in a worker thread when ``authorize_in_thread``)."""
        return request

    @abstractmethod
    def parse(self, call: Call, answers: list[NativeAnswer]) -> dict[str, Any]:
        """Pure: the native answer(s) → the OpenAI response body."""

    def decoder(self, call: Call) -> StreamDecoder:
        raise NotImplementedError(f"{self.name} does not stream")

    @abstractmethod
    def error(self, call: Call | None, status: int, body: bytes,
              headers: Mapping[str, str] | None = None) -> ProxyError:
        """Pure: a native error answer → the proxy error (message not yet scrubbed)."""
