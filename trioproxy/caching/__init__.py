"""Caches: the ``DualCache`` every pre-call hook receives, and the response cache.

* ``dual_cache.py``: :class:`~.dual_cache.DualCache` (the seeds' API, in memory; part of the
  handler API as ``trioproxy.DualCache``);
* ``response_cache.py``: identical requests answered without the upstream (``litellm_settings.cache``);
  looked up by the pipeline, stored as one of its observers;
* ``redis_cache.py``: its shared backend (``cache_params.type: redis``), a service of the app.

Private by convention. May import: ``upstream`` (the answer types), ``config``, ``context``,
``streaming``, ``errors``, ``coordination`` (the Redis client).
"""
