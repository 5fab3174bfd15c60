"""What the proxy can say about a model group: LiteLLM's ``ModelGroupInfo``, from the config and the price table.

Used by the public model hub (``GET /public/model_hub``); the shape is LiteLLM's
(``litellm/types/router.py``, ``ModelGroupInfo``) so that its clients and UIs read ours unchanged.
Where each field comes from:

* ``providers``: the deployments' providers, in config order, each once.
* ``input_cost_per_token`` / ``output_cost_per_token``: each deployment's price as it is billed
  (its overrides, else the table: :meth:`CostCalculator.price`); for a group, the highest of its
  deployments (what a request may cost), ``None`` when no deployment is priced.
* ``max_input_tokens`` / ``max_output_tokens`` and ``mode``: the price table's entry for the
  upstream model (found by the same name rules as its price), the highest over the group;
  ``mode`` defaults to ``chat``, as in LiteLLM.
* A deployment's ``model_info`` may set any field (``max_input_tokens``, ``mode``,
  ``supports_vision``, ``description``…), as LiteLLM's ``model_info`` does; it wins over the table.
* ``tpm``/``rpm``: not known to trioproxy (deployment rate limits are not implemented): ``None``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from ..config import Deployment
from .cost import CostCalculator
from .prices import PriceTable

__all__ = ["model_group_info", "table_entry"]

_SUPPORTS = ("supports_parallel_function_calling", "supports_vision", "supports_web_search",
             "supports_reasoning", "supports_function_calling")
#: ``model_info`` keys copied into the group's record when a deployment sets them
_FROM_MODEL_INFO = ("max_input_tokens", "max_output_tokens", "mode", "description", "input_cost_per_pixel",
                    *_SUPPORTS)


@functools.cache
def _table_entries() -> Mapping[str, Mapping[str, Any]]:
    """The packaged price table's entries by lower-case name (read once per process)."""
    ref = resources.files("trioproxy").joinpath("data", "model_prices.json")
    models = json.loads(ref.read_text(encoding="utf-8"))["models"]
    return {name.lower(): entry for name, entry in models.items()}


def table_entry(table: PriceTable, model: str) -> Mapping[str, Any] | None:
    """The price table's entry for ``model`` (its facts: ``max_input_tokens``, ``mode``…), by the
    same name rules as its price; None when the table does not know it."""
    key = table.resolve(model)
    return _table_entries().get(key) if key is not None else None


def _highest(values: list[Any]) -> Any:
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return max(numbers) if numbers else None


def model_group_info(name: str, deployments: Sequence[Deployment], cost: CostCalculator) -> dict[str, Any]:
    """One ``ModelGroupInfo`` record for the model group ``name`` (its deployments in config order)."""
    facts: list[Mapping[str, Any]] = []
    prices = []
    for deployment in deployments:
        key = cost.table.resolve(deployment.upstream_model)
        entry = dict(_table_entries().get(key, {})) if key is not None else {}
        entry.update({k: deployment.model_info[k] for k in _FROM_MODEL_INFO if k in deployment.model_info})
        facts.append(entry)
        prices.append(cost.price(deployment))
    modes = [f["mode"] for f in facts if isinstance(f.get("mode"), str)]
    descriptions = [f["description"] for f in facts if isinstance(f.get("description"), str)]
    record: dict[str, Any] = {
        "model_group": name,
        "providers": list(dict.fromkeys(d.provider for d in deployments)),
        "max_input_tokens": _highest([f.get("max_input_tokens") for f in facts]),
        "max_output_tokens": _highest([f.get("max_output_tokens") for f in facts]),
        "input_cost_per_token": _highest([p.input_cost_per_token for p in prices if p is not None]),
        "output_cost_per_token": _highest([p.output_cost_per_token for p in prices if p is not None]),
        "input_cost_per_pixel": _highest([f.get("input_cost_per_pixel") for f in facts]),
        "mode": modes[0] if modes else "chat",
        "tpm": None,
        "rpm": None,
        "description": descriptions[0] if descriptions else None,
    }
    for flag in _SUPPORTS:
        record[flag] = any(f.get(flag) is True for f in facts)
    record["supported_openai_params"] = None
    return record
