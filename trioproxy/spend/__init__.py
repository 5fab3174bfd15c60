"""The spend layer (issue #11): records, the durable outbox and its writer, budgets and limits.

* :mod:`.record` — :class:`SpendRecord`, :class:`RecordInputs`, :func:`build_record`.
* :mod:`.outbox` — the mmap'd append-only outbox (survives ``kill -9``), replay of dead processes'.
* :mod:`.writer` — :class:`SpendWriter`: hand-off on the request path, batched exactly-once writes.

``docs/spend.md`` explains the rules; nothing here is wired into the request path yet.
"""

from .outbox import Outbox, OutboxError, find_orphans
from .record import (
    ErrorInfo,
    KeyIdentity,
    RecordInputs,
    SpendRecord,
    build_record,
    provisional_record,
)
from .writer import SpendSink, SpendWriter, default_outbox_dir, flush_interval_for

__all__ = [
    "ErrorInfo",
    "KeyIdentity",
    "Outbox",
    "OutboxError",
    "RecordInputs",
    "SpendRecord",
    "SpendSink",
    "SpendWriter",
    "build_record",
    "default_outbox_dir",
    "find_orphans",
    "flush_interval_for",
    "provisional_record",
]
