"""The upstreams: providers behind one small interface, and the router that picks among them.

* ``base.py``: the seam (``Provider``: ``send`` and ``open_stream``; ``UpstreamStream``);
* ``router.py``: a model name → a routing plan (``routing/``: names, strategies, cooldowns, tags,
  fallbacks) run over the providers, retries included (``is_retryable``: the error says so itself
  when an upstream error made it);
* ``routing/``: the routing rules, pure (a layer of its own, below ``config``);
* ``errors.py``: upstream failures → proxy errors, with the same messages whichever transport ran,
  and whether each may be retried;
* ``http11/``: the built-in HTTP/1.1 client (the default transport of ``openai/…``);
  ``httpx_provider.py``: the same over httpx (``general_settings.http_client: httpx``);
  ``fake/``: the built-in ``fake/…`` provider (and the local answers to ``mock_response``);
* ``providers/``: native provider adapters (Anthropic, Azure, Bedrock, Gemini, Vertex, Ollama…).

Private by convention. May import: ``upstream.routing``, ``observability`` (the token estimator),
``config``, ``streaming``, ``masking``, ``errors``.
"""
