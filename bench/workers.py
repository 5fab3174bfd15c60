"""``trioproxy run --workers 2`` against one worker: throughput of the same requests, interleaved.

Usage (from the repository root)::

    .venv/bin/python bench/workers.py [--rounds 5] [--duration 5] [--concurrency 16]

Two proxies run side by side for the whole benchmark, one with one worker and one with
``--workers 2``, both on the built-in ``fake`` provider (answers at once, no upstream process
competing for the CPU: the proxy's own work is what is measured). Rounds alternate between them
(A B A B …) after one unmeasured warm-up of each, each a ``bench/loadgen.py`` run (a process of its own, N keep-alive connections, closed
loop, 1 s warm-up); the idle proxy costs nothing meanwhile. Prints each round and the medians.

The load generator runs on the same machine: on a 2-core machine it takes a share of the cores the
two workers would need, so the ratio measured here is a lower bound of what two workers give
when clients are elsewhere.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.proxy_process import ProxyProcess, write_config  # noqa: E402

MASTER_KEY = "sk-bench-workers-master"
CONFIG = {"model_list": [{"model_name": "bench-model", "litellm_params": {"model": "fake/bench-model"}}],
          "general_settings": {"master_key": MASTER_KEY}}


def _load(base_url: str, concurrency: int, duration: float) -> dict:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", f"{base_url}/v1/chat/completions",
         "--concurrency", str(concurrency), "--duration", str(duration), "--warmup", "1",
         "--api-key", MASTER_KEY], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = ProxyProcess(write_config(Path(tmp) / "one", CONFIG), log_level="warning")
        two = ProxyProcess(write_config(Path(tmp) / "two", CONFIG), args=["--workers", "2"], log_level="warning")
        try:
            for proxy in (one, two):          # first requests of a process are slower: not measured
                _load(proxy.base_url, args.concurrency, 2)
            rows = []
            for index in range(args.rounds):
                single = _load(one.base_url, args.concurrency, args.duration)
                double = _load(two.base_url, args.concurrency, args.duration)
                for result in (single, double):
                    if result.get("failed") or not result.get("ok"):
                        raise SystemExit(f"failed requests: {result}")
                rows.append((single["rps"], double["rps"], single["latency_ms"]["p50"], double["latency_ms"]["p50"]))
                print(f"round {index + 1}: 1 worker {rows[-1][0]:.0f} req/s (p50 {rows[-1][2]:.2f} ms), "
                      f"2 workers {rows[-1][1]:.0f} req/s (p50 {rows[-1][3]:.2f} ms), "
                      f"ratio {double['rps'] / single['rps']:.2f}", flush=True)
        finally:
            one.kill()
            two.kill()
    medians = [statistics.median(col) for col in zip(*rows, strict=True)]
    ratios = statistics.median(r[1] / r[0] for r in rows)
    print(f"medians over {args.rounds} rounds, {args.concurrency} clients, {args.duration:g} s cells: "
          f"1 worker {medians[0]:.0f} req/s (p50 {medians[2]:.2f} ms), 2 workers {medians[1]:.0f} req/s "
          f"(p50 {medians[3]:.2f} ms); median ratio {ratios:.2f}")


if __name__ == "__main__":
    main()
