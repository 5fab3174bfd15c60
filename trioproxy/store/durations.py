"""Durations as LiteLLM writes them: ``<int><unit>`` with s, m (minutes), h, d, w, mo (months).

Used by ``duration`` (key expiry), ``budget_duration`` and ``grace_period``. Months are calendar
months (31 Jan + 1mo = 28/29 Feb), the rest fixed lengths; the result of :meth:`Duration.after` is
exact, never aligned to the clock (a key made at 10:17 with ``1h`` expires at 11:17).

At most 100 years (:data:`MAX_SECONDS`, ``1200mo``): longer ones overflowed ``datetime`` arithmetic
(an unhandled ``OverflowError`` where a 400 was due), and a key meant to outlive that has no
``duration`` at all. Digits are ASCII only.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Duration", "InvalidDuration", "parse_duration"]

_PATTERN = re.compile(r"^([0-9]{1,12})(s|m|h|d|w|mo)$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: the longest duration accepted: 100 years (of 366 days; or 1200 calendar months)
MAX_SECONDS = 100 * 366 * 86400
_MAX_MONTHS = 1200


class InvalidDuration(ValueError):
    pass


@dataclass(frozen=True)
class Duration:
    amount: int
    unit: str

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"

    def after(self, start: datetime) -> datetime:
        """``start`` + this duration (calendar months for ``mo``)."""
        if self.unit != "mo":
            return start + timedelta(seconds=self.amount * _SECONDS[self.unit])
        month0 = start.month - 1 + self.amount
        year, month = start.year + month0 // 12, month0 % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day)


def parse_duration(text: str) -> Duration:
    if not isinstance(text, str):
        raise InvalidDuration(f"expected a duration string like '30d', got {type(text).__name__}")
    match = _PATTERN.match(text.strip())
    if not match:
        shown = text if len(text) <= 32 else text[:32] + "…"
        raise InvalidDuration(
            f"invalid duration {shown!r}: use <number><unit> with unit s, m, h, d, w or mo (e.g. '30s', '1h', '30d', '1mo')")
    amount = int(match.group(1))
    if amount <= 0:
        raise InvalidDuration(f"invalid duration {text!r}: must be greater than zero")
    unit = match.group(2)
    if (amount > _MAX_MONTHS) if unit == "mo" else (amount * _SECONDS[unit] > MAX_SECONDS):
        raise InvalidDuration(f"invalid duration {text!r}: must be at most 100 years")
    return Duration(amount, unit)
