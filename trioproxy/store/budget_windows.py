"""Budget windows (``budget_duration``) as the store keeps them: ``budget_reset_at`` ends the current one.

A window starts when the budget is set (the admin layer writes ``budget_reset_at = now + duration``)
or when the previous one ended, never aligned to the clock, so a ``30s`` budget set at 10:00:17 runs
10:00:17–10:00:47, then 10:00:47–10:01:17… A window's start is its end minus one duration (calendar
months for ``mo``: the end's day clamped to the shorter month, so a window that started on the 31st
drifts to the 28th after February — the same as stepping forward with ``Duration.after``).

Rolling a row forward (spend → 0, ``budget_reset_at`` → the end of the window that contains *now*)
is done by whoever touches the row first once its ``budget_reset_at`` has passed: the spend writer
before it adds a batch, or the reset service on time (``trioproxy.spend.resets``).
"""

from __future__ import annotations

import calendar
import logging
from datetime import datetime

from .durations import Duration, InvalidDuration, parse_duration

__all__ = ["parse_budget_duration", "roll_forward", "window_start"]

log = logging.getLogger("trioproxy.store")

_MAX_STEPS = 100_000


def parse_budget_duration(text: str | None) -> Duration | None:
    """A stored ``budget_duration`` → :class:`Duration`; None (lifetime) when absent or unreadable."""
    if not text:
        return None
    try:
        return parse_duration(text)
    except InvalidDuration:
        log.error("unreadable budget_duration %r: treated as a lifetime budget", text)
        return None


def _minus(duration: Duration, end: datetime) -> datetime:
    if duration.unit != "mo":
        return end - (duration.after(end) - end)
    month0 = end.month - 1 - duration.amount
    year, month = end.year + month0 // 12, month0 % 12 + 1
    day = min(end.day, calendar.monthrange(year, month)[1])
    return end.replace(year=year, month=month, day=day)


def window_start(reset_at: datetime, duration: Duration) -> datetime:
    """The start of the window that ends at ``reset_at``."""
    return _minus(duration, reset_at)


def roll_forward(reset_at: datetime, duration: Duration, now: datetime) -> datetime:
    """The end of the window containing ``now`` in the sequence ``reset_at``, ``reset_at + d``, …

    Returns ``reset_at`` itself when it is still ahead of ``now``.
    """
    if now < reset_at:
        return reset_at
    if duration.unit != "mo":
        step = duration.after(reset_at) - reset_at
        n = (now - reset_at) // step + 1
        return reset_at + n * step
    end = reset_at
    for _ in range(_MAX_STEPS):
        if end > now:
            return end
        end = duration.after(end)
    return end
