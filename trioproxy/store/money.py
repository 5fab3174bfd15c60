"""Money in the store: integer micro-USD, never floats.

Budgets and spend arrive as JSON numbers (``10``, ``0.25``) and leave as JSON numbers, but in
between — in every table, sum and comparison — they are integers of 10⁻⁶ USD, so SQLite (whose
NUMERIC is a float), PostgreSQL and later Redis counters agree to the unit. Conversion goes through
``Decimal(str(x))`` so ``0.1`` becomes exactly 100 000 micro-USD, not 100 000.00000000001.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

__all__ = ["MICROS_PER_USD", "from_micros", "to_micros"]

MICROS_PER_USD = 1_000_000
_LIMIT = 2**62  # well inside BIGINT: 4.6e12 USD


def to_micros(amount: int | float | str | Decimal | None) -> int | None:
    """USD (a JSON number) → micro-USD, rounded half-even to the micro. ``None`` stays ``None``."""
    if amount is None:
        return None
    if isinstance(amount, bool):
        raise ValueError("expected a number, got a boolean")
    try:
        value = Decimal(str(amount)) * MICROS_PER_USD
    except InvalidOperation:
        raise ValueError(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {amount!r}")
    micros = int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    if abs(micros) >= _LIMIT:
        raise ValueError(f"amount out of range: {amount!r}")
    return micros


def from_micros(micros: int | None) -> float | None:
    """micro-USD → USD as a JSON number (a float is what JSON carries; the store keeps the integer)."""
    if micros is None:
        return None
    return int(micros) / MICROS_PER_USD
