"""``SELECT`` lists of joined tables with prefixed column names (``k.token AS "k__token"``), so one
row of a join decodes into one dict per table (``codec_for(table).decode(row, "k__")``)."""

from __future__ import annotations

from typing import Any

from .sql import quote

__all__ = ["select_list"]


def select_list(alias: str, table: Any) -> str:
    return ", ".join(f'{alias}.{quote(c.name)} AS "{alias}__{c.name}"' for c in table.columns)
