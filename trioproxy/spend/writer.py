"""The spend writer: hands records to the outbox on the request path, stores them in the background.

Request path (synchronous, microseconds, no database, no thread — measured in
``bench/spend_admission.py``)::

    record = writer.admitted(inputs)     # at admission: the record as known then goes to the outbox
    ...
    writer.finished(record.complete(end_time=..., spend_micros=..., prompt_tokens=..., ...))
                                         # before the client gets its answer (or build_record(inputs))

Background (a service like the store and the logging sink)::

    await nursery.start(writer.run)  # opens the outbox, replays dead processes' outboxes, then started
    ...
    await writer.drain(timeout)      # at shutdown: everything queued is stored (or stays in the outbox)

Batches: the writer waits up to ``flush_interval`` (default 0.2 s; LiteLLM's ``proxy_batch_write_at``
caps it, and it never exceeds 1 s so spend is visible through the API within a second) or until
``batch_size`` records are queued, then stores the batch in one transaction
(``SpendRepository.write``: ``ON CONFLICT (request_id) DO NOTHING`` + aggregates of the rows
inserted). While the store is down the batch is retried with exponential backoff (``retry_initial``
→ ``retry_max``); the records stay queued and in the outbox, so nothing is lost and, after recovery,
each is counted once. The queue holds at most ``max_queued`` records (10 000): beyond that a
hand-off stays in the outbox only (its entry waits in order) and is read back from the mapped segment
as the queue empties. A dead process's outbox is replayed one batch at a time. A batch the store *refuses* (not unavailable: a bug, a bad value) is split
until the offending record is alone; that record is retried a few times, then parked (logged with
its request id, kept in the outbox for the next start) so one bad record never stops spend.

Outbox segments are deleted only after every record in them was committed.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Protocol

import trio

from ..store.errors import StoreClosed, StoreUnavailable
from ..store.url import parse_database_url
from .outbox import ADMITTED, DEFAULT_SEGMENT_SIZE, FINAL, Entry, Outbox, OutboxError, find_orphans
from .record import RecordInputs, SpendRecord, build_record

__all__ = ["SpendSink", "SpendWriter", "default_outbox_dir", "flush_interval_for"]

log = logging.getLogger("trioproxy.spend.writer")

_POISON_ATTEMPTS = 5


class SpendSink(Protocol):
    """Where batches go: ``store.spend`` (a :class:`~trioproxy.store.repositories.SpendRepository`)."""

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]: ...


def default_outbox_dir(database_url: Any, general_settings: Mapping[str, Any] | None = None, *,
                       cwd: str | PathLike[str] = ".") -> Path:
    """Where this proxy's outbox lives (one directory for all its worker processes; one group each).

    ``general_settings.spend_outbox_dir`` if set (relative to the working directory); else, for
    SQLite, ``<database file>.spend-outbox`` next to the database (the same disk and backups as the
    ledger it feeds); else ``.trioproxy/spend-outbox`` under the working directory. It must be a
    local filesystem (``flock`` and shared mappings on NFS are not to be trusted) that survives
    restarts of the process (not a container's tmpfs when the container is replaced).
    """
    configured = (general_settings or {}).get("spend_outbox_dir")
    if configured:
        path = Path(str(configured)).expanduser()
        return path if path.is_absolute() else Path(cwd) / path
    url = parse_database_url(database_url) if database_url is not None else None
    if url is not None and url.kind == "sqlite" and url.target not in ("", ":memory:"):
        db = Path(url.target)
        return (db if db.is_absolute() else Path(cwd) / db).with_name(db.name + ".spend-outbox")
    return Path(cwd) / ".trioproxy" / "spend-outbox"


def flush_interval_for(proxy_batch_write_at: float | None, default: float = 0.2) -> float:
    """``general_settings.proxy_batch_write_at`` (seconds) caps the delay; never more than 1 s."""
    if proxy_batch_write_at is None:
        return default
    try:
        value = float(proxy_batch_write_at)
    except (TypeError, ValueError):
        return default
    if not math.isfinite(value) or value <= 0:
        return default
    return min(value, default, 1.0)


class SpendWriter:
    def __init__(self, sink: SpendSink, outbox_dir: str | PathLike[str], *, batch_size: int = 500,
                 flush_interval: float = 0.2, retry_initial: float = 0.1, retry_max: float = 5.0,
                 sync_interval: float = 1.0, replay_interval: float = 30.0,
                 segment_size: int = DEFAULT_SEGMENT_SIZE, max_queued: int = 10_000):
        if batch_size < 1:
            raise ValueError("batch_size must be ≥ 1")
        if max_queued < batch_size:
            raise ValueError("max_queued must be ≥ batch_size")
        self.sink = sink
        self.outbox = Outbox(outbox_dir, segment_size=segment_size)
        self.batch_size = batch_size
        self.flush_interval = min(flush_interval, 1.0)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.sync_interval = sync_interval
        self.replay_interval = replay_interval
        self.max_queued = max_queued
        self._queue: deque[tuple[SpendRecord, Entry | None]] = deque()
        # beyond max_queued (the store is down) records stay in the outbox only: their entries wait
        # here and are read back, in order, as the queue empties
        self._spilled: deque[Entry] = deque()
        self._deletable: list[Any] = []       # segments fully resolved on the request path
        self._admitted: dict[str, Entry] = {}
        self._has_items = trio.Event()
        self._flush_now = trio.Event()
        self._pending = 0                     # queued + being written
        self._idle = trio.Event()
        self._idle.set()
        self._draining = False
        self._io_lock = trio.Lock()           # file work in threads: one at a time
        self._running = False
        self._closing = False
        #: counters (tests, metrics, the bench)
        self.written = 0                      # rows this process inserted
        self.duplicates = 0                   # rows the store already had
        self.failures = 0                     # failed write attempts
        self.replayed = 0                     # rows inserted from dead processes' outboxes
        self.parked: list[SpendRecord] = []   # records the store refused repeatedly
        self.outbox_failures = 0              # hand-offs the outbox could not take (memory only)
        self.spilled = 0                      # hand-offs kept in the outbox only (queue full)
        self.queue_peak = 0                   # most records held in memory by the queue
        self.replay_peak = 0                  # most records of a dead outbox held at once

    # --- the request path (synchronous) --------------------------------------------------------------
    def admitted(self, inputs: RecordInputs) -> SpendRecord:
        """Write the record of an admitted request as known now; if the process dies before
        :meth:`finished`, replay stores it as a failure (``proxy restarted``, cost 0). Returns it:
        ``record.complete(...)`` at the end is the cheapest way to build the final record."""
        record = build_record(inputs)
        entry = self._append(ADMITTED, record)
        if entry is not None:
            self._admitted[inputs.request_id] = entry
        return record

    def finished(self, record: SpendRecord) -> None:
        """Hand off the final record: durable when this returns; stored in the background.

        Never raises: if the outbox cannot take it (disk full with no spare segment, the outbox
        closed at shutdown) the record is still queued for the store, only not crash-proof — an
        error is logged (``outbox_failures`` counts them)."""
        entry = self._append(FINAL, record)
        if entry is not None:
            # the final frame supersedes the admitted one (replay prefers it): resolve that now, so
            # a request waiting for the store costs one outbox entry, not two and a dict slot
            admitted = self._admitted.pop(record.request_id, None)
            if admitted is not None:
                self._deletable += self.outbox.resolve([admitted])
        if entry is not None and (self._spilled or len(self._queue) >= self.max_queued):
            self._spilled.append(entry)       # durable already; memory holds its place, not the record
            self.spilled += 1
        else:                                 # (a record the outbox refused can only live in memory)
            self._queue.append((record, entry))
            if len(self._queue) > self.queue_peak:
                self.queue_peak = len(self._queue)
        if self._pending == 0:
            self._idle = trio.Event()
        self._pending += 1
        if not self._has_items.is_set():
            self._has_items.set()
        if len(self._queue) >= self.batch_size and not self._flush_now.is_set():
            self._flush_now.set()

    def _append(self, kind: int, record: SpendRecord) -> Entry | None:
        if self._closing:
            self.outbox_failures += 1
            return None
        try:
            return self.outbox.append(kind, record.to_json())
        except (OSError, OutboxError, ValueError) as exc:
            self.outbox_failures += 1
            log.error("spend record %s not written to the outbox (%s): kept in memory only until stored",
                      record.request_id, exc)
            return None

    @property
    def pending(self) -> int:
        return self._pending

    # --- the service ---------------------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await trio.to_thread.run_sync(self.outbox.open)
        try:
            self._running = True
            await self.replay_orphans()
            task_status.started()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._maintenance)
                await self._flush_loop()
        finally:
            self._running = False
            self._closing = True                # from now on hand-offs stay in memory (logged)
            with trio.CancelScope(shield=True):
                async with self._io_lock:
                    await trio.to_thread.run_sync(self._close_outbox)

    def _close_outbox(self) -> None:
        try:
            self.outbox.sync()
        finally:
            self.outbox.close()

    async def drain(self, timeout: float) -> bool:  # noqa: ASYNC109 - the services interface
        """Store everything queued, up to ``timeout`` s; False if some records are still pending
        (they stay in the outbox and are stored by the next start)."""
        self._draining = True
        self._flush_now.set()
        self._has_items.set()
        with trio.move_on_after(timeout):
            while self._pending:
                await self._idle.wait()
            return True
        return False

    def _refill(self) -> None:
        """Read spilled records back from the outbox into the queue, oldest first, up to one batch
        per call (a memory copy each: short slices of the Trio thread)."""
        room = min(self.max_queued - len(self._queue), self.batch_size)
        while room > 0 and self._spilled:
            entry = self._spilled.popleft()
            try:
                record = SpendRecord.from_json(self.outbox.read(entry))
            except Exception:   # a bug, not an outage: the frame stays unresolved for the next start
                log.exception("spilled spend record unreadable from the outbox; left there for the next start")
                self._pending -= 1
                if self._pending == 0:
                    self._idle.set()
                continue
            self._queue.append((record, entry))
            room -= 1

    async def _flush_loop(self) -> None:
        while True:
            await self._has_items.wait()
            if self._spilled:
                self._refill()
            if not self._queue:
                self._has_items = trio.Event()
                continue
            if not self._draining and len(self._queue) < self.batch_size:
                with trio.move_on_after(self.flush_interval):
                    await self._flush_now.wait()
            n = min(len(self._queue), self.batch_size)
            batch = [self._queue.popleft() for _ in range(n)]
            if not self._queue and not self._spilled:
                self._has_items = trio.Event()
            if not self._draining:
                self._flush_now = trio.Event()
            await self._store(batch)

    async def _store(self, batch: list[tuple[SpendRecord, Entry | None]]) -> None:
        """Write ``batch`` until it is stored (or its bad records are parked), then resolve it."""
        done = await self._write_with_retry(batch)
        resolved: list[Entry] = []
        for record, entry in done:
            if entry is not None:
                resolved.append(entry)
            admitted = self._admitted.pop(record.request_id, None)
            if admitted is not None:
                resolved.append(admitted)
        deletable = self.outbox.resolve(resolved)
        if self._deletable:
            deletable += self._deletable
            self._deletable = []
        self._pending -= len(batch)
        if self._pending == 0:
            self._idle.set()
        if deletable:
            async with self._io_lock:
                await trio.to_thread.run_sync(self.outbox.delete, deletable)

    async def _write_with_retry(self, batch: list[tuple[SpendRecord, Entry | None]]) -> list[tuple[SpendRecord, Entry | None]]:
        """The part of ``batch`` that is now in the store (everything, unless records were parked)."""
        delay = self.retry_initial
        refused = 0
        while True:
            try:
                inserted = await self.sink.write([record.to_row() for record, _ in batch])
            except (StoreUnavailable, StoreClosed) as exc:
                self.failures += 1
                log.warning("spend store unavailable (%s): %d records kept in the outbox, retrying in %.1f s",
                            exc, len(batch), delay)
            except Exception:
                self.failures += 1
                refused += 1
                if len(batch) > 1:
                    half = len(batch) // 2
                    return (await self._write_with_retry(batch[:half])
                            + await self._write_with_retry(batch[half:]))
                if refused >= _POISON_ATTEMPTS:
                    record = batch[0][0]
                    log.exception("spend record %s refused by the store %d times: parked (kept in the outbox "
                                  "for the next start)", record.request_id, refused)
                    self.parked.append(record)
                    return []
                log.exception("spend store refused record %s; retrying in %.1f s", batch[0][0].request_id, delay)
            else:
                self.written += len(inserted)
                self.duplicates += len(batch) - len(inserted)
                return batch
            await trio.sleep(delay)
            delay = min(delay * 2, self.retry_max)

    async def _maintenance(self) -> None:
        next_replay = trio.current_time() + self.replay_interval
        while True:
            await trio.sleep(self.sync_interval)
            try:
                async with self._io_lock:
                    if self.outbox.needs_spare:
                        await trio.to_thread.run_sync(self.outbox.prepare_spare)
                    await trio.to_thread.run_sync(self.outbox.sync)
                if trio.current_time() >= next_replay:
                    next_replay = trio.current_time() + self.replay_interval
                    await self.replay_orphans()
            except OSError:
                log.exception("spend outbox maintenance failed; retrying")

    async def replay_orphans(self) -> int:
        """Store the outboxes of dead processes in this directory (and delete them); returns rows
        inserted. Leaves an outbox in place when the store is unavailable (tried again later)."""
        async with self._io_lock:
            orphans = await trio.to_thread.run_sync(
                lambda: find_orphans(self.outbox.directory, own_group=self.outbox.group))
        inserted_total = 0
        for i, orphan in enumerate(orphans):
            try:
                # one batch in memory at a time (plus the dead process's requests in flight), however
                # long the outage that filled this outbox was
                chunks = orphan.chunks(self.batch_size)
                refused: list[SpendRecord] = []
                count = 0
                while (chunk := await trio.to_thread.run_sync(next, chunks, None)) is not None:
                    count += len(chunk)
                    self.replay_peak = max(self.replay_peak, len(chunk))
                    inserted, bad = await self._replay_write(chunk)
                    inserted_total += inserted
                    self.replayed += inserted
                    refused += bad
                if refused and not self._carry(refused):
                    log.error("spend outbox of dead process %s: %d refused records could not be kept in this "
                              "process's outbox; left in place (replayed again later)", orphan.group, len(refused))
                    await trio.to_thread.run_sync(orphan.release)
                    continue
                await trio.to_thread.run_sync(orphan.remove)
                if count:
                    log.info("spend outbox of dead process %s replayed: %d records, %d new",
                             orphan.group, count, inserted_total)
            except (StoreUnavailable, StoreClosed) as exc:
                log.warning("spend outbox replay postponed (store unavailable: %s)", exc)
                for rest in orphans[i:]:
                    await trio.to_thread.run_sync(rest.release)
                break
            except Exception:
                log.exception("spend outbox replay of %s failed; retried later", orphan.group)
                for rest in orphans[i:]:
                    await trio.to_thread.run_sync(rest.release)
                break
            except BaseException:
                with trio.CancelScope(shield=True):
                    for rest in orphans[i:]:
                        await trio.to_thread.run_sync(rest.release)
                raise
        return inserted_total

    async def _replay_write(self, records: list[SpendRecord]) -> tuple[int, list[SpendRecord]]:
        """Store replayed records: (rows inserted, records the store refused). Like a live batch, a
        refused batch is halved until the bad records are alone, so they never hold back the others;
        unavailability propagates (the replay is postponed)."""
        try:
            inserted = await self.sink.write([r.to_row() for r in records])
        except (StoreUnavailable, StoreClosed):
            raise
        except Exception:
            self.failures += 1
            if len(records) == 1:
                log.exception("spend record %s from a dead process's outbox refused by the store: parked",
                              records[0].request_id)
                return 0, list(records)
            half = len(records) // 2
            first, bad_first = await self._replay_write(records[:half])
            second, bad_second = await self._replay_write(records[half:])
            return first + second, bad_first + bad_second
        return len(inserted), []

    def _carry(self, records: list[SpendRecord]) -> bool:
        """Park refused replayed records in this process's outbox (unresolved: kept for the next
        start, like a live parked record) so their dead outbox can go; False if it cannot take them."""
        for record in records:
            if self._append(FINAL, record) is None:
                return False
            self.parked.append(record)
        return True
