"""Keeps ``bench/streams.py`` from rotting: a tiny run end to end, asserting only that it completes.

It starts the real pieces (paced upstream, Hypercorn stream floor, ``trioproxy run``, the load
client, cProfile on a second proxy) exactly as a benchmark run does, at two streams and four deltas.
No figure is asserted: speed is measured in ``bench/``, never by a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "streams.py"


def test_streams_benchmark_smoke_run_completes_and_prints_its_summary(tmp_path: Path) -> None:
    output = tmp_path / "streams.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--target", "both", "--no-pin",
         "--profile", "2", "--profiler", "cprofile", "--output", str(output)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    for target in ("floor", "proxy"):
        assert any(line.startswith(f"{target}: max streams with TTFT p99 added") for line in lines)
    assert sum(line.startswith("K=") for line in lines) == 3  # levels 1, 2 and the profiled cell
    assert "Profile of the proxy at K=2 streams" in done.stdout
    document = json.loads(output.read_text())
    assert {(c["target"], c["streams"]) for c in document["cells"]} == {
        (target, k) for target in ("direct", "floor", "proxy") for k in (1, 2)}
    assert document["profile"]["source"] == "cProfile"
