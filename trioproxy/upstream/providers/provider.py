"""The one Provider that runs every adapter over the shared HTTP/1.1 pool.

:class:`AdapterProvider` implements the provider interface of ``upstream/base.py``: ``send``
returns the OpenAI JSON an adapter translated from the native answer; ``open_stream`` returns an
:class:`AdapterStream` whose ``aiter_bytes()`` yields OpenAI SSE frames decoded from the native
stream. Everything that is I/O lives here, once for all providers:

* requests go through :class:`~trioproxy.upstream.http11.Http11Pool` (the pool the OpenAI provider
  uses), with the deployment's ``timeout`` (``stream_timeout`` for streams);
* credentials that may need I/O (botocore's credential chain, a google-auth token refresh) are
  computed by the adapter's ``sign`` in a worker thread, bounded by a ``CapacityLimiter``; the Trio
  thread never blocks;
* transport failures map to the same proxy errors as the OpenAI provider (``upstream/common.py``);
  native error answers map through the adapter, and every message passes the secret scrubber,
  which learns each deployment's credentials (AWS secret keys, Azure AD tokens…) when the
  deployment is first configured;
* stream-ending rules: ``data: [DONE]`` is sent only after the provider's own terminator; a body
  that ends without it raises :class:`~.adapter.StreamInterruptedError` (502,
  ``upstream_stream_interrupted``) from ``aiter_bytes()``, so the relay ends the client's stream
  with an error event. After the terminator the rest of the body is drained so the connection can
  go back to the pool; closing the stream earlier closes the socket (the provider stops).
"""

from __future__ import annotations

import os
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import trio

from ...errors import BadRequestError, ProxyError
from ..base import UpstreamResponse
from ..errors import MAX_ERROR_BODY, connection_error, failure_error, timeout_error
from ..http11 import (
    ConnectError,
    ConnectTimeout,
    Http11Pool,
    Http11Response,
    PoolTimeout,
    ReadError,
    ReadTimeout,
    RemoteProtocolError,
    TransportError,
    WriteError,
)
from .adapter import Adapter, Call, NativeAnswer, NativeRequest, ProviderConfigError, StreamDecoder
from .params import CHAT_PARAMS, COMPLETION_PARAMS, EMBEDDING_PARAMS, apply_param_policy

if TYPE_CHECKING:
    from ...config import Deployment
    from ...masking import SecretScrubber

__all__ = ["AdapterProvider", "AdapterStream", "Prepared", "deployment_params"]

DONE_FRAME = b"data: [DONE]\n\n"
_KNOWN = {"chat/completions": CHAT_PARAMS, "completions": COMPLETION_PARAMS, "embeddings": EMBEDDING_PARAMS}
#: requests one call may have in flight at once (Titan embeddings: one request per input)
FAN_OUT = 8
#: answers larger than this are translated in a worker thread (JSON, base64 floats, token estimates)
THREAD_PARSE_BYTES = 256 * 1024
#: prepared deployments kept (see ``AdapterProvider._prepared``)
PREPARED_CACHE_SIZE = 1024


def deployment_params(deployment: Deployment) -> dict[str, Any]:
    """A deployment's ``litellm_params`` as the adapters read them.

    The config keeps a native provider's settings in ``provider_params`` (``config/providers.py``);
    they win over ``extra_params`` (the body defaults, where deployments built by hand in tests put
    them too). ``api_base``, ``api_key``, ``extra_headers`` and ``model_info`` come from their own fields.
    """
    params: dict[str, Any] = dict(deployment.extra_params)
    explicit = getattr(deployment, "provider_params", None)
    if isinstance(explicit, Mapping):
        params.update(explicit)
    if deployment.api_base:
        params.setdefault("api_base", deployment.api_base)
    if deployment.api_key:
        params.setdefault("api_key", deployment.api_key)
    if deployment.model_info:
        params.setdefault("model_info", deployment.model_info)
    return params


@dataclass(slots=True)
class Prepared:
    """A deployment resolved once: its adapter, settings and parameter policy."""

    prefix: str
    adapter: Adapter
    settings: Any
    drop_params: bool
    additional_drop_params: tuple[str, ...]
    secrets: list[str] = field(default_factory=list)


def _map_transport(exc: TransportError, deployment: Deployment) -> ProxyError:
    """The HTTP/1.1 client's errors → the proxy errors the OpenAI provider raises for them."""
    if isinstance(exc, ConnectTimeout | PoolTimeout):
        return timeout_error(deployment, connecting=True)
    if isinstance(exc, ReadTimeout):
        return timeout_error(deployment, connecting=False)
    if isinstance(exc, RemoteProtocolError):
        return connection_error(deployment, exc, str(exc))
    if isinstance(exc, ConnectError | ReadError | WriteError):
        return connection_error(deployment, exc)
    return failure_error(deployment, exc)


class AdapterProvider:
    """Every native provider (Anthropic, Azure, Bedrock, Gemini, Vertex AI, Ollama, presets).

    ``adapters`` maps a model prefix (``anthropic``, ``bedrock``, ``groq``…) to its adapter
    (default: :data:`~trioproxy.upstream.providers.registry.ADAPTERS`). ``params_of`` returns a
    deployment's ``litellm_params`` (default :func:`deployment_params`); ``drop_params`` is
    ``litellm_settings.drop_params``; ``environ`` supplies the providers' key variables
    (``ANTHROPIC_API_KEY``, ``AWS_REGION_NAME``…), read when a deployment is configured.
    """

    #: this provider applies LiteLLM's parameter policy itself (``params.apply_param_policy``); the
    #: router applies only the drop lists for providers without it (``params.apply_drop_list``)
    applies_param_policy = True

    def __init__(self, pool: Http11Pool, scrubber: SecretScrubber, *,
                 adapters: Mapping[str, Adapter] | None = None,
                 params_of: Callable[[Deployment], Mapping[str, Any]] = deployment_params,
                 drop_params: bool = False, environ: Mapping[str, str] | None = None,
                 sign_limiter: trio.CapacityLimiter | None = None) -> None:
        if adapters is None:
            from .registry import ADAPTERS
            adapters = ADAPTERS
        self._pool = pool
        self._scrubber = scrubber
        self._adapters = dict(adapters)
        self._params_of = params_of
        self._drop_params = drop_params
        self._environ = os.environ if environ is None else environ
        #: worker threads for signing / token refresh (botocore and google-auth are synchronous)
        self._sign_limiter = sign_limiter or trio.CapacityLimiter(8)
        #: worker threads translating large answers (CPU-bound: about one per core is enough)
        self._parse_limiter = trio.CapacityLimiter(max(2, os.cpu_count() or 2))
        #: prepared deployments by identity, the oldest dropped beyond PREPARED_CACHE_SIZE (a wildcard
        #: ``*`` makes a deployment per model clients name; a refreshed secret, one per change)
        self._prepared: OrderedDict[int, tuple[Deployment, Prepared]] = OrderedDict()

    @property
    def prefixes(self) -> list[str]:
        return sorted(self._adapters)

    # -- configuration -------------------------------------------------------------------------

    def prepare(self, deployment: Deployment) -> Prepared:
        """Resolve a deployment's settings (cached). Raises ProviderConfigError; pure, no I/O.

        The wiring calls it for every deployment at startup so a bad setting is a startup error;
        calls made later reuse the result. The deployment's credentials join the scrubber here.
        """
        cached = self._prepared.get(id(deployment))
        if cached is not None and cached[0] is deployment:
            self._prepared.move_to_end(id(deployment))
            return cached[1]
        adapter = self._adapters.get(deployment.provider)
        if adapter is None:
            raise ProviderConfigError([f"no adapter for the provider prefix {deployment.provider!r}"])
        params = self._params_of(deployment)
        settings = adapter.configure(deployment.provider, deployment.upstream_model, params, self._environ)
        drop = params.get("drop_params")
        additional = params.get("additional_drop_params") or ()
        if isinstance(additional, str):
            additional = (additional,)
        prepared = Prepared(prefix=deployment.provider, adapter=adapter, settings=settings,
                            drop_params=drop if isinstance(drop, bool) else self._drop_params,
                            additional_drop_params=tuple(str(a) for a in additional),
                            secrets=[s for s in adapter.secrets(settings) if s])
        self._scrubber.add(*prepared.secrets)
        self._prepared[id(deployment)] = (deployment, prepared)   # the reference keeps the id unique
        if len(self._prepared) > PREPARED_CACHE_SIZE:
            self._prepared.popitem(last=False)
        return prepared

    def pricing_model(self, deployment: Deployment, answer_model: str | None) -> str | None:
        """The name to price a call of ``deployment`` with, when its adapter knows better than the
        configured model (Azure: ``model_info.base_model``, else the dated model its answer names)."""
        if deployment.provider not in self._adapters:
            return None
        try:
            prepared = self.prepare(deployment)
        except ProviderConfigError:
            return None
        return prepared.adapter.pricing_model(prepared.settings, answer_model)

    def _call(self, prepared: Prepared, deployment: Deployment, endpoint: str, body: dict[str, Any],
              stream: bool) -> Call:
        adapter = prepared.adapter
        served = adapter.endpoints_for(prepared.settings)
        if endpoint not in served:
            raise BadRequestError(
                f"The provider {prepared.prefix!r} (model {deployment.model_name!r}) does not serve "
                f"/v1/{endpoint}; it serves: {', '.join('/v1/' + e for e in sorted(served))}.",
                code="unsupported_endpoint")
        clean = apply_param_policy(
            body, provider=prepared.prefix, endpoint=endpoint, known=_KNOWN.get(endpoint, frozenset()),
            supported=adapter.supported_params(endpoint, prepared.settings),
            native=adapter.native_params(endpoint, prepared.settings),
            pass_unknown=adapter.passes_unknown_params(prepared.settings),
            drop_params=prepared.drop_params, additional_drop_params=prepared.additional_drop_params)
        clean["model"] = body.get("model") or deployment.upstream_model
        prefix = "chatcmpl" if endpoint == "chat/completions" else "cmpl" if endpoint == "completions" else "emb"
        return Call(endpoint=endpoint, body=clean, stream=stream, settings=prepared.settings,
                    created=int(time.time()), call_id=f"{prefix}-{secrets.token_hex(12)}")

    # -- the provider interface ----------------------------------------------------------------

    async def send(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> UpstreamResponse:
        prepared = self.prepare(deployment)
        call = self._call(prepared, deployment, endpoint, body, stream=False)
        requests = prepared.adapter.build(call)
        if len(requests) == 1:
            answers = [await self._fetch(prepared, deployment, call, requests[0])]
        else:
            answers = await self._fetch_all(prepared, deployment, call, requests)
        size = sum(len(a.body) for a in answers)
        if endpoint == "embeddings" or size > THREAD_PARSE_BYTES:
            # embeddings: base64-encoding floats and estimating tokens of large inputs is CPU work
            payload = await trio.to_thread.run_sync(_translate, prepared.adapter, call, answers,
                                                    limiter=self._parse_limiter, abandon_on_cancel=True)
        else:
            payload = _translate(prepared.adapter, call, answers)
        return UpstreamResponse(200, {"content-type": "application/json"}, payload)

    async def open_stream(self, deployment: Deployment, endpoint: str, body: dict[str, Any]) -> AdapterStream:
        prepared = self.prepare(deployment)
        call = self._call(prepared, deployment, endpoint, body, stream=True)
        (request,) = prepared.adapter.build(call)
        decoder = prepared.adapter.decoder(call)
        response = await self._open(prepared, deployment, call, request, deployment.stream_timeout)
        return AdapterStream(response, decoder, deployment)

    # -- I/O -------------------------------------------------------------------------------------

    async def _authorize(self, prepared: Prepared, request: NativeRequest) -> NativeRequest:
        adapter = prepared.adapter
        if not adapter.authorize_in_thread:
            return adapter.sign(prepared.settings, request)
        # abandoned on cancellation: signing has no side effect but a cached credential or token
        return await trio.to_thread.run_sync(adapter.sign, prepared.settings, request,
                                             limiter=self._sign_limiter, abandon_on_cancel=True)

    async def _open(self, prepared: Prepared, deployment: Deployment, call: Call, request: NativeRequest,
                    read_timeout: float) -> Http11Response:
        for name, value in deployment.extra_headers.items():
            request.headers[name.lower()] = str(value)
        request = await self._authorize(prepared, request)
        try:
            response = await self._pool.request(request.method, request.url, request.headers, request.body,
                                                read_timeout=read_timeout)
        except TransportError as exc:
            raise _map_transport(exc, deployment) from exc
        if response.status >= 400:
            try:
                content = await response.aread(MAX_ERROR_BODY)
            except TransportError as exc:
                raise _map_transport(exc, deployment) from exc
            finally:
                response.close()
            raise self._error(prepared, deployment, call, response.status, content[:MAX_ERROR_BODY],
                              response.headers)
        return response

    async def _fetch(self, prepared: Prepared, deployment: Deployment, call: Call,
                     request: NativeRequest) -> NativeAnswer:
        response = await self._open(prepared, deployment, call, request, deployment.timeout)
        try:
            content = await response.aread()
        except TransportError as exc:
            raise _map_transport(exc, deployment) from exc
        return NativeAnswer(response.status, response.headers, content)

    async def _fetch_all(self, prepared: Prepared, deployment: Deployment, call: Call,
                         requests: list[NativeRequest]) -> list[NativeAnswer]:
        """Several requests for one call, at most FAN_OUT at once; the first failure cancels the rest."""
        answers: list[NativeAnswer | None] = [None] * len(requests)
        limiter = trio.CapacityLimiter(FAN_OUT)

        async def one(index: int) -> None:
            async with limiter:
                answers[index] = await self._fetch(prepared, deployment, call, requests[index])

        try:
            async with trio.open_nursery() as nursery:
                for index in range(len(requests)):
                    nursery.start_soon(one, index)
        except BaseExceptionGroup as group:
            # the first proxy error is the answer; the others are the cancelled siblings' fallout
            errors = [e for e in _leaves(group) if isinstance(e, ProxyError)]
            if errors:
                raise errors[0] from None
            raise
        return [a for a in answers if a is not None]

    def _error(self, prepared: Prepared, deployment: Deployment, call: Call | None, status: int,
               body: bytes, headers: Mapping[str, str] | None = None) -> ProxyError:
        error = prepared.adapter.error(call, status, body, headers)
        message = f"Upstream {deployment.label} error: {error.message}"
        error.message = self._scrubber.scrub(message)
        error.args = (error.message,)
        if getattr(error, "upstream_status", None) is None:
            error.upstream_status = status  # type: ignore[attr-defined]
        error.model = deployment.model_name
        error.llm_provider = prepared.prefix
        return error


def _translate(adapter: Adapter, call: Call, answers: list[NativeAnswer]) -> bytes:
    return orjson.dumps(adapter.parse(call, answers))


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            out += _leaves(exc)
        else:
            out.append(exc)
    return out


def _frames(chunks: list[dict[str, Any]]) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)


class AdapterStream:
    """An open native stream, read as OpenAI SSE bytes. The caller must ``aclose()`` it.

    ``sends_done_marker`` is true: the bytes end with ``data: [DONE]`` exactly when the provider's
    own terminator arrived, so a relay that checks for ``[DONE]`` treats every provider alike.
    """

    sends_done_marker = True
    #: its first chunk may only announce the answer (a role-only delta made from Anthropic's
    #: ``message_start`` or Bedrock's ``messageStart``, Azure's empty opening chunk), and providers
    #: report overload right after it: the router reads past it within the attempt (``primed.py``)
    announces_first = True

    def __init__(self, response: Http11Response, decoder: StreamDecoder, deployment: Deployment) -> None:
        self._response = response
        self._decoder = decoder
        self._deployment = deployment
        self.status = response.status
        self.headers = {"content-type": "text/event-stream"}
        #: the native terminator arrived (the answer is complete)
        self.completed = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        response = self._response
        decoder = self._decoder
        try:
            while True:
                try:
                    piece = await response.read_some()
                except TransportError as exc:
                    raise _map_transport(exc, self._deployment) from exc
                if self.completed:
                    if piece is None:
                        return
                    continue            # after the terminator: drain so the connection is reusable
                if piece is None:
                    tail = _frames(decoder.close())   # raises StreamInterruptedError when incomplete
                    self.completed = True
                    yield tail + DONE_FRAME
                    return
                out = _frames(decoder.feed(piece))
                if decoder.finished:
                    out += _frames(decoder.close()) + DONE_FRAME
                    self.completed = True
                if out:
                    yield out
        finally:
            response.close()    # no-op once the body was read to its end

    async def aclose(self) -> None:
        """Release the connection; idempotent. Before the end of the body: close the socket."""
        self._response.close()
        await trio.lowlevel.checkpoint()
