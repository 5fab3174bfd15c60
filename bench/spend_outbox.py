"""The outbox options of issue #11, measured: what handing one spend record to durable storage costs
on the Trio thread (the figures in ``trioproxy/spend/outbox.py``'s docstring come from this).

* ``encode``        — orjson + CRC of a realistic record, the floor every option pays;
* ``mmap``          — the chosen design: ``trioproxy.spend.outbox.Outbox.append`` (memcpy into a
  pre-faulted, pre-allocated shared mapping; survives kill -9 through the page cache);
* ``os.write``      — one ``write(2)`` on an ``O_APPEND`` file descriptor (a syscall per record);
* ``lmdb``          — one write transaction per record, ``writemap=True, sync=False, metasync=False``
  (needs ``pip install lmdb``: the ``bench`` extra);
* ``sqlite hop``    — one INSERT through ``trio.to_thread.run_sync`` (WAL, synchronous=NORMAL).

Interleaved rounds (the order alternates), each option ``--calls`` single timed calls; median of the
per-round medians, and the p99 of all calls.

    .venv/bin/python bench/spend_outbox.py [--rounds 6] [--calls 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import struct
import tempfile
import time
import zlib
from collections.abc import Callable

import trio

from trioproxy.spend import KeyIdentity, RecordInputs, build_record
from trioproxy.spend.outbox import FINAL, Outbox

RECORD = build_record(RecordInputs(
    request_id="chatcmpl-" + "a" * 29, call_type="acompletion", start_time=1.7e9, end_time=1.7e9 + 1.2,
    identity=KeyIdentity(api_key="f" * 64, key_alias="alias", user_id="u1", team_id="team-1",
                         key_metadata={"spend_logs_metadata": {"owner": "x"}}),
    model="gpt-4o-2024-08-06", model_group="gpt-4o", api_base="https://api.openai.com/v1", spend_micros=123456,
    prompt_tokens=120, completion_tokens=300, end_user="cust-1", request_metadata={"tags": ["a", "b"]},
    requester_ip_address="10.0.0.1"))
FRAME = struct.Struct("<IIB")


def options(tmp: str) -> dict[str, Callable[[], None]]:
    out: dict[str, Callable[[], None]] = {}
    out["encode"] = lambda: zlib.crc32(RECORD.to_json())
    box = Outbox(f"{tmp}/outbox", segment_size=256 << 20)
    box.open()
    out["mmap (Outbox.append)"] = lambda: box.append(FINAL, RECORD.to_json())
    fd = os.open(f"{tmp}/append.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def os_write() -> None:
        payload = RECORD.to_json()
        os.write(fd, FRAME.pack(len(payload), zlib.crc32(payload), 2) + payload)

    out["os.write"] = os_write
    try:
        import lmdb
    except ImportError:
        pass
    else:
        env = lmdb.open(f"{tmp}/lmdb", map_size=1 << 31, writemap=True, sync=False, metasync=False)
        counter = iter(range(10**9))

        def lmdb_put() -> None:
            payload = RECORD.to_json()
            with env.begin(write=True) as txn:
                txn.put(b"%010d" % next(counter), payload)

        out["lmdb"] = lmdb_put
    return out


async def sqlite_hop(tmp: str, calls: int) -> list[int]:
    conn = sqlite3.connect(f"{tmp}/outbox.db", check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS o (id INTEGER PRIMARY KEY, b BLOB)")
    limiter = trio.CapacityLimiter(1)
    times = []
    for _ in range(calls):
        payload = RECORD.to_json()
        t0 = time.perf_counter_ns()
        await trio.to_thread.run_sync(conn.execute, "INSERT INTO o (b) VALUES (?)", (payload,), limiter=limiter)
        times.append(time.perf_counter_ns() - t0)
    conn.close()
    return times


def main(rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        opts = options(tmp)
        names = [*opts, "sqlite hop"]
        medians: dict[str, list[float]] = {n: [] for n in names}
        alls: dict[str, list[int]] = {n: [] for n in names}
        for r in range(rounds):
            order = names if r % 2 == 0 else names[::-1]
            for name in order:
                if name == "sqlite hop":
                    times = trio.run(sqlite_hop, tmp, max(1000, calls // 10))
                else:
                    fn = opts[name]
                    times = []
                    for _ in range(calls):
                        t0 = time.perf_counter_ns()
                        fn()
                        times.append(time.perf_counter_ns() - t0)
                times.sort()
                medians[name].append(times[len(times) // 2] / 1000)
                alls[name] += times
    print(f"One spend record to durable storage, {rounds} interleaved rounds x {calls} calls (Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"a shared machine: read the figures as ratios).\n")
    print(f"record: {len(RECORD.to_json())} bytes of JSON\n")
    print("| option | p50 µs | p99 µs |")
    print("|---|---|---|")
    for name in names:
        every = sorted(alls[name])
        print(f"| {name} | {statistics.median(medians[name]):.1f} | {every[int(len(every) * 0.99)] / 1000:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    main(args.rounds, args.calls)
