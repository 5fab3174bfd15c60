"""The built-in request policies and guardrails, one small module each.

Every policy here is an ordinary handler object (a :class:`~trioproxy.hooks.base.CustomGuardrail`
or :class:`~trioproxy.hooks.base.CustomLogger` subclass): :mod:`.builtins` maps config names to
them (and gives them what they need through their constructors), and the objects go through the
same loader checks and the same scheduler as user handlers, so their order and their errors follow
the hook table in ``hooks/scheduler.py``. The user's text they read comes from the one walker,
``trioproxy.prompt.text_slots``; :mod:`.scan` runs a large scan in a worker thread.

=====================  =================================  ==========================================
config                 module                             phase
=====================  =================================  ==========================================
enforce_user_param     :mod:`.request_policies`           pre_call (policies run before everything)
enforced_params        :mod:`.request_policies`           pre_call
block_robots           ``http/routes/robots.py``          a route (``GET /robots.txt``)
hide_secrets           :mod:`.hide_secrets`               pre_call (callback or guardrail)
banned_keywords        :mod:`.banned_keywords`            pre_call
blocked_user_check     :mod:`.blocked_users`              pre_call (routes: ``http/routes/customers.py``)
llmguard_moderations   :mod:`.llm_guard`                  pre_call (it may rewrite the prompt)
llamaguard_moderations :mod:`.llamaguard`                 moderation (the proxy's own router)
google_text_moderation :mod:`.google_text_moderation`     moderation
=====================  =================================  ==========================================

``max_request_size_mb`` / ``max_response_size_mb`` are not hooks: the request limit is enforced
while the body is read (``http/asgi.py``) and the response limit while the upstream answer is
read (``core/``), because a hook would only see a body that was already read in full.

Secret detection (``hide_secrets``) is :mod:`.secret_detection` (with :mod:`.secret_patterns` and
:mod:`.secret_checks`). Private by convention. May import: ``hooks``, ``observability``,
``upstream`` (types), ``config``, ``prompt``, ``masking``, ``errors``.
"""
