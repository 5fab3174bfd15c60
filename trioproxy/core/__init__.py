"""The request core: one request of a proxy endpoint, from its body to its last byte.

* ``pipeline.py``: :class:`~.pipeline.Pipeline`, the flow and the race: **every** nursery and
  cancel scope of a request ("what is cancelled when?" is answered there);
* ``run.py``: :class:`~.run.RequestRun`, the request's state held once and its outcome rules
  applied once (hooks, failure and headers hooks, succeed / fail / cancelled, the final cost,
  observers guarded, resources closed in one place);
* ``relay.py``: :class:`~.relay.StreamRelay`, the body of a streaming answer (depends on the run,
  never on the pipeline);
* ``endpoints.py``: the three endpoints (``CHAT``, ``COMPLETIONS``, ``EMBEDDINGS``), body checks and
  bounds, what goes upstream, a pre-call hook's string as the answer;
* ``shutdown.py``: open streams ended with a ``shutdown`` event before Hypercorn's deadline;
* ``disconnect.py``: an HTTP/1.x connection's end cancels the request it serves (the server's
  connection class signals it; the fast path in ``http/asgi.py`` registers the request's scope);
* ``health.py``: ``GET /health``, every deployment called once (LiteLLM's health check).

Private by convention (the handler API is ``trioproxy/__init__.py``). May import: ``hooks``,
``caching``, ``upstream``, ``observability``, ``auth``, ``config`` and the leaves (README "How it is
built").
"""
