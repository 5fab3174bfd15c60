"""diskcache vs a plain sqlite3 table for the disk response cache (``caching/disk_cache.py``): CPU
microseconds per store and per lookup of a 2 KB answer, medians of 5 interleaved rounds of 2,000
operations each (CPU time, not wall time: it survives a loaded machine better).

Run: ``.venv/bin/python bench/disk_cache_bench.py``
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable

import diskcache

VALUE = os.urandom(2000)
N = 2000
ROUNDS = 5


def _timed(work: Callable[[int], object]) -> float:
    start = time.process_time()
    for i in range(N):
        work(i)
    return (time.process_time() - start) / N * 1e6


def with_diskcache(directory: str) -> tuple[float, float]:
    cache = diskcache.Cache(directory)
    stored = _timed(lambda i: cache.set(f"k{i}", b"%.6f:" % time.time() + VALUE, expire=600))
    read = _timed(lambda i: cache.get(f"k{i}"))
    cache.close()
    return stored, read


def with_sqlite(directory: str) -> tuple[float, float]:
    con = sqlite3.connect(os.path.join(directory, "c.db"), isolation_level=None)
    con.execute("pragma journal_mode=wal")
    con.execute("pragma synchronous=normal")
    con.execute("create table c (k text primary key, v blob, stored real, expires real)")
    stored = _timed(lambda i: con.execute("insert or replace into c values (?, ?, ?, ?)",
                                          (f"k{i}", VALUE, time.time(), time.time() + 600)))
    read = _timed(lambda i: con.execute("select v, stored from c where k = ? and expires > ?",
                                        (f"k{i}", time.time())).fetchone())
    con.close()
    return stored, read


def main() -> None:
    results: dict[str, list[tuple[float, float]]] = {"diskcache": [], "sqlite3": []}
    for _ in range(ROUNDS):
        for name, run in (("diskcache", with_diskcache), ("sqlite3", with_sqlite)):
            with tempfile.TemporaryDirectory() as directory:
                results[name].append(run(directory))
    for name, rows in results.items():
        print(f"{name}: store {statistics.median(r[0] for r in rows):.1f} µs CPU, "
              f"lookup {statistics.median(r[1] for r in rows):.1f} µs CPU (medians of {ROUNDS} rounds)")


if __name__ == "__main__":
    main()
