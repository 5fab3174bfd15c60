"""The hook machinery: how handler objects are loaded, checked, ordered and called.

* ``base.py``: ``CustomLogger``, ``CustomGuardrail``, ``GuardrailEventHooks`` (the handler API's
  base classes; handlers need not subclass them);
* ``loader.py``: import a handler by dotted path, inspect its hooks once, bind their arguments;
* ``scheduler.py``: the order and combination rules of every phase (the README's hook table is its
  docstring), pure functions over an injected ``invoke``;
* ``steps.py``: the proxy's own steps that take a place in a phase's order (``LimitsAndBudgets``:
  admission, in the pre-call phase);
* ``assembly.py``: config → :class:`~.assembly.Handlers` (the hook plan, the logging handlers, the
  handlers that are services), with the built-ins supplied by the caller (``policies/builtins.py``,
  through the composition root), so this package never imports the policies built on it.

Private by convention. May import: ``config`` and ``errors``.
"""
