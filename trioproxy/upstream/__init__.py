"""The upstreams: providers behind one small interface, and the router that picks among them.

* ``base.py``: the seam (``Provider``: ``send`` and ``open_stream``; ``UpstreamStream``);
* ``router.py``: a deployment for a model name (weighted shuffle), and retries on another one
  (``is_retryable``: the error says so itself when an upstream error made it);
* ``errors.py``: upstream failures → proxy errors, with the same messages whichever transport ran,
  and whether each may be retried;
* ``http11/``: the built-in HTTP/1.1 client (the default transport of ``openai/…``);
  ``httpx_provider.py``: the same over httpx (``general_settings.http_client: httpx``);
  ``fake/``: the built-in ``fake/…`` provider (and the local answers to ``mock_response``);
* ``providers/``: native provider adapters (Anthropic, Azure, Bedrock, Gemini, Vertex, Ollama…).

Private by convention. May import: ``observability`` (the token estimator), ``config``,
``streaming``, ``masking``, ``errors``.
"""
