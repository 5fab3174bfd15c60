"""Model prices (the table) and the cost of one request's tokens.

Why this module exists: a proxy that fronts many providers is the one place that
sees every request, so it is where spend can be attributed to keys, teams and
deployments. That only works if cost is computed the same way everywhere, so
the rules live here, in pure functions with no I/O beyond reading one packaged
JSON file:

* Prices come from ``trioproxy/data/model_prices.json`` (USD per token, public
  list prices on the date the file states). A deployment can override either
  price in its ``model_list`` entry; :func:`price_for` applies that rule.
* An unknown model, or a response without usage, costs ``None`` -- never ``0``.
  Silently reporting zero spend for a model we cannot price would make budgets
  and dashboards lie; ``None`` lets the caller log "unpriced" instead.
* Names arrive in many spellings (``openai/gpt-4o``, ``gpt-4o-2024-08-06``,
  ``anthropic/claude-3-5-sonnet-20241022``, ``mistral-large-latest``). Rather
  than duplicate table entries for each, :meth:`PriceTable.lookup` normalises
  by rule: drop routing prefixes, then drop one trailing snapshot/date suffix.
  Names no rule can derive go in the JSON's small ``aliases`` map.
* When an upstream reports no usage (some streaming backends), the caller can
  fall back to ``tokens.estimate_usage`` (the token estimator has its own module).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

__all__ = [
    "Price",
    "PriceTable",
    "compute_cost",
    "price_for",
    "usage_from_response",
]


@dataclass(frozen=True, slots=True)
class Price:
    """USD per token for prompt (input) and completion (output) tokens."""

    input_cost_per_token: float
    output_cost_per_token: float


# One trailing suffix that names a snapshot of a base model rather than a
# different model: ISO dates (OpenAI ``-2024-08-06``), compact dates (Anthropic
# ``-20241022``), Mistral's ``-2411``/OpenAI's ``-0613``, Google's ``-002``,
# moving ``-latest`` pointers, and Vertex's ``@20241022`` form. Only one is
# stripped, and only after an exact match failed, so a snapshot with its own
# price (e.g. ``gpt-4o-2024-05-13``) keeps it. Five-digit suffixes are left
# alone on purpose: ``mixtral-8x7b-32768`` names a context size, not a date.
_SNAPSHOT_SUFFIX = re.compile(r"(?:-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|latest)|@(?:\d{8}|latest))$")

_INPUT_KEY = "input_cost_per_token"
_OUTPUT_KEY = "output_cost_per_token"


class PriceTable:
    """An immutable name -> :class:`Price` map with forgiving name lookup."""

    __slots__ = ("_aliases", "_date", "_models", "_source")

    def __init__(
        self,
        models: Mapping[str, Price],
        *,
        aliases: Mapping[str, str] | None = None,
        source: str = "",
        date: str = "",
    ) -> None:
        self._models: dict[str, Price] = {k.lower(): v for k, v in models.items()}
        self._aliases: dict[str, str] = {k.lower(): v.lower() for k, v in (aliases or {}).items()}
        for alias, target in self._aliases.items():
            if target not in self._models:
                raise ValueError(f"price alias {alias!r} points at unknown model {target!r}")
        self._source = source
        self._date = date

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriceTable:
        """Build a table from the JSON document's structure, validating it.

        Raises ``ValueError`` on a malformed document, so a bad edit to the
        packaged file fails loudly at startup instead of mis-pricing requests.
        """
        raw_models = data.get("models")
        if not isinstance(raw_models, Mapping) or not raw_models:
            raise ValueError("price table needs a non-empty 'models' object")
        models: dict[str, Price] = {}
        for name, entry in raw_models.items():
            if not isinstance(entry, Mapping):
                raise ValueError(f"price entry for {name!r} is not an object")
            if not isinstance(entry.get("provider"), str):
                raise ValueError(f"price entry for {name!r} has no 'provider' string")
            models[name] = Price(
                _coerce_price(f"{name}.{_INPUT_KEY}", entry.get(_INPUT_KEY)),
                _coerce_price(f"{name}.{_OUTPUT_KEY}", entry.get(_OUTPUT_KEY)),
            )
        aliases = data.get("aliases") or {}
        if not isinstance(aliases, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
        ):
            raise ValueError("'aliases' must map model names to model names")
        return cls(
            models,
            aliases=aliases,
            source=str(data.get("_source", "")),
            date=str(data.get("_date", "")),
        )

    @classmethod
    def load_default(cls) -> PriceTable:
        """The packaged table; parsed once per process and shared (it is immutable)."""
        return _load_default()

    @property
    def source(self) -> str:
        """Where the figures come from (the JSON's ``_source``)."""
        return self._source

    @property
    def date(self) -> str:
        """The date the figures were true on (the JSON's ``_date``, ISO format)."""
        return self._date

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def lookup(self, model: str) -> Price | None:
        """Price for ``model`` or ``None`` if it is not in the table.

        Tried in order, case-insensitively, for the full name and then for each
        shorter name left after dropping a leading ``provider/`` segment
        (``openrouter/openai/gpt-4o`` -> ``openai/gpt-4o`` -> ``gpt-4o``):
        exact entry, alias, then the same two after removing one snapshot
        suffix (see ``_SNAPSHOT_SUFFIX``). There is deliberately no
        longest-prefix matching: ``gpt-4o-mini`` must never be priced as
        ``gpt-4o``, and a model we do not know costs ``None``, not a guess.
        """
        key = self.resolve(model)
        return self._models[key] if key is not None else None

    def resolve(self, model: str) -> str | None:
        """The table entry (lower-case key) that :meth:`lookup` prices ``model`` by, or ``None``.

        For callers that read an entry's other facts (context window, mode: ``model_info.py``)
        by the same name rules as its price.
        """
        name = model.strip().lower()
        while name:
            key = self._exact(name)
            if key is None:
                base = _SNAPSHOT_SUFFIX.sub("", name)
                if base != name:
                    key = self._exact(base)
            if key is not None:
                return key
            _, sep, rest = name.partition("/")
            if not sep:
                return None
            name = rest
        return None

    def _exact(self, name: str) -> str | None:
        if name in self._models:
            return name
        return self._aliases.get(name)


@functools.cache
def _load_default() -> PriceTable:
    ref = resources.files("trioproxy").joinpath("data", "model_prices.json")
    return PriceTable.from_dict(json.loads(ref.read_text(encoding="utf-8")))


def _coerce_price(what: str, value: object) -> float:
    """A finite, non-negative float from a JSON/YAML value.

    Strings are accepted because PyYAML reads ``1e-6`` (no dot) as a string,
    which is exactly how people write per-token prices in config files.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return number


def price_for(table: PriceTable, model: str, overrides: Mapping[str, Any] | None) -> Price | None:
    """The price a deployment is billed at: its overrides, else the table.

    ``overrides`` is the deployment's ``model_list`` entry (or its params);
    only ``input_cost_per_token`` and ``output_cost_per_token`` are read, and a
    key whose value is ``None`` counts as absent. Each present key wins over
    the table on its own; the other side falls back to the table entry, or to
    ``0.0`` when the model is not in the table (someone who priced one side of a
    private model has said what it costs). With no override and no table
    entry the result is ``None``. Raises ``ValueError`` for an override that is
    not a finite non-negative number, so callers should resolve prices once
    when loading config to surface mistakes early.
    """
    overrides = overrides or {}
    raw_in = overrides.get(_INPUT_KEY)
    raw_out = overrides.get(_OUTPUT_KEY)
    base = table.lookup(model)
    if raw_in is None and raw_out is None:
        return base
    fallback = base or Price(0.0, 0.0)
    return Price(
        _coerce_price(_INPUT_KEY, raw_in) if raw_in is not None else fallback.input_cost_per_token,
        _coerce_price(_OUTPUT_KEY, raw_out)
        if raw_out is not None
        else fallback.output_cost_per_token,
    )


def compute_cost(
    price: Price | None, prompt_tokens: int | None, completion_tokens: int | None
) -> float | None:
    """USD cost of one request, or ``None`` if it cannot be known.

    ``None`` when the price is unknown or when neither token count is known.
    When exactly one count is known the other is taken as 0: embeddings
    responses report only prompt tokens, and that is a complete usage record.
    Negative counts are a caller bug and raise ``ValueError``.
    """
    if price is None or (prompt_tokens is None and completion_tokens is None):
        return None
    p = prompt_tokens or 0
    c = completion_tokens or 0
    if p < 0 or c < 0:
        raise ValueError(f"token counts must be >= 0, got {prompt_tokens}, {completion_tokens}")
    return p * price.input_cost_per_token + c * price.output_cost_per_token


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def usage_from_response(body: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """``(prompt_tokens, completion_tokens)`` from a response body's ``usage``.

    Works on chat/completions/embeddings bodies and on the final chunk of a
    stream that carries ``usage``. Reads ``prompt_tokens``/``completion_tokens``
    and falls back to ``input_tokens``/``output_tokens`` (the Responses API's
    names). A missing completion count is derived from ``total_tokens`` when
    possible, which makes an embeddings usage ``{"prompt_tokens": 8,
    "total_tokens": 8}`` come out as ``(8, 0)``. Anything absent, negative or
    not an integer is reported as ``None`` rather than guessed.
    """
    usage = body.get("usage") if isinstance(body, Mapping) else None
    if not isinstance(usage, Mapping):
        return None, None
    prompt = _count(usage.get("prompt_tokens"))
    if prompt is None:
        prompt = _count(usage.get("input_tokens"))
    completion = _count(usage.get("completion_tokens"))
    if completion is None:
        completion = _count(usage.get("output_tokens"))
    if completion is None and prompt is not None:
        total = _count(usage.get("total_tokens"))
        if total is not None and total >= prompt:
            completion = total - prompt
    return prompt, completion
