"""The timeouts of streamed responses' reads, kept by one watchdog task instead of a cancel scope per read.

Why: ``_Connection.receive`` bounds each read with ``trio.move_on_after``: a cancel scope entered,
its deadline registered in Trio's deadline heap, exited. Relaying 128 paced streams that was ~5–7 µs
of the proxy's CPU per delta (README, "Benchmark": A/B rounds with the reads unbounded). A streamed
body's read now records its deadline on its connection (``_Connection.receive_watched``) and this
watchdog wakes the reads that waited past theirs. The price is precision: a watched read times out
between its timeout and one :data:`WATCH_TICK` after it (the README says so next to
``stream_timeout``); reads with a timeout under :data:`WATCHED_MIN_TIMEOUT`, where that tick would be
a large share, keep a cancel scope each, as do TLS connections and non-streamed answers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from .pool import _Connection

__all__ = ["WATCHED_MIN_TIMEOUT", "WATCH_TICK", "ReadWatchdog"]

log = logging.getLogger("trioproxy.upstream")

#: how often the read watchdog looks at the reads it watches (seconds): a watched timeout's precision
WATCH_TICK = 0.5
#: reads with a shorter timeout keep a cancel scope of their own (the tick would be a large share of it)
WATCHED_MIN_TIMEOUT = 5.0


class ReadWatchdog:
    """Wakes the watched reads (:meth:`_Connection.receive_watched`) that waited past their deadline.

    One Trio system task, started by the first watched read and ending when no read is watched (so
    an idle proxy has no timer), looks every :data:`WATCH_TICK` seconds at the reads that wait and
    wakes each one past its deadline with ``trio.lowlevel.notify_closing`` (the read raises, the
    response closes its connection, as after any timeout). Per read, what is left of a timeout is a
    set insert and removal.
    """

    def __init__(self, tick: float = WATCH_TICK) -> None:
        self._tick = tick
        self._reads: set[_Connection] = set()
        self._running = False

    def watch(self, conn: _Connection) -> None:
        self._reads.add(conn)
        if not self._running:
            self._running = True
            trio.lowlevel.spawn_system_task(self._watch, name="trioproxy upstream read watchdog")

    def unwatch(self, conn: _Connection) -> None:
        self._reads.discard(conn)

    async def _watch(self) -> None:
        try:
            while self._reads:
                await trio.sleep(self._tick)
                now = trio.current_time()
                for conn in list(self._reads):
                    if conn.read_deadline <= now and not conn.timed_out:
                        conn.timed_out = True
                        trio.lowlevel.notify_closing(conn.socket)
        except trio.Cancelled:
            raise
        except Exception as exc:   # a system task must never raise: that would end the process
            log.error("the upstream read watchdog failed", exc_info=exc)
        finally:
            self._running = False
