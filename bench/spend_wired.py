"""What budgets, rate limits and spend records cost on the request path (issue #11's speed figures).

Usage (from the repository root)::

    .venv/bin/python bench/spend_wired.py [--rounds 5] [--duration 3] [--clients 16]

One ``bench/fast_upstream.py``; two ``trioproxy run`` processes pointing at it, both serving the
priced ``bench-model``:

* **master** — no database, the master key: the proxy as it was before issue #11 (no admission,
  no spend record);
* **master-db** — the same proxy as *key* below, called with the master key: master-key calls are
  never limited but are still admitted (counted in the proxy's budget) and recorded, so this cell
  pays the spend writer's background work too and isolates what the *key's* checks add;
* **key** — a SQLite database, and a virtual key with ``max_budget``, ``rpm_limit`` and
  ``tpm_limit`` (far above what the run uses, so nothing is refused): every request is
  authenticated from the key cache, admitted against the key's budget and rate limits (in-process
  limiter), settled, and its spend record handed to the writer's outbox; the writer stores the
  records in the background (what a real deployment pays).

Rounds run the cells in turn (the order reverses every round) so drift of a shared machine
affects both alike; each cell is ``bench/loadgen.py`` (its own process: no shared GIL) at
``--clients`` keep-alive connections, non-streaming, and at 1 connection for the added p50. Prints
every round and the medians: throughput ratios key / master and key / master-db at ``--clients``,
the proxy process's CPU per request at ``--clients`` (the steadier figure on a shared machine: a
CPU-bound proxy's throughput is its inverse), and the added p50 at 1 client.
No test asserts these figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from run import tree_cpu_seconds  # noqa: E402  (bench/run.py)

from support.proxy_process import ProxyProcess, write_config  # noqa: E402

MASTER = "sk-bench-master"
BODY = '{"model":"bench-model","messages":[{"role":"user","content":"hello"}],"max_tokens":20}'


def _config(upstream_port: int, database_url: str | None) -> dict[str, Any]:
    general: dict[str, Any] = {"master_key": MASTER}
    if database_url is not None:
        general["database_url"] = database_url
    return {"model_list": [{"model_name": "bench-model", "litellm_params": {
        "model": "openai/bench-model", "api_base": f"http://127.0.0.1:{upstream_port}/v1",
        "api_key": "sk-bench-upstream", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}}],
        "litellm_settings": {"num_retries": 0}, "general_settings": general}


def _loadgen(url: str, key: str, clients: int, duration: float, pid: int | None = None) -> dict[str, Any]:
    """One loadgen run; with ``pid``, also the proxy's CPU µs per request over the whole run
    (warm-up included, so divided by every answer: less sensitive to a shared machine's noise
    than wall-clock throughput, which other sessions' load moves by ±30 %)."""
    cpu_before = tree_cpu_seconds(pid) if pid is not None else None
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "loadgen.py"), "--url", url,
                          "--concurrency", str(clients), "--duration", str(duration), "--warmup", "0.5",
                          "--api-key", key, "--body", BODY], capture_output=True, check=True, timeout=duration + 60)
    result: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    if result["failed"] or not result["ok"]:
        raise SystemExit(f"loadgen saw failures: {result['statuses']} {result['error_samples']}")
    cpu_after = tree_cpu_seconds(pid) if pid is not None else None
    if cpu_before is not None and cpu_after is not None:
        result["cpu_us"] = (cpu_after - cpu_before) * 1e6 / (result["ok"] + result["warmup_ok"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0, help="measured seconds per cell")
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    upstream = subprocess.Popen([sys.executable, str(ROOT / "bench" / "fast_upstream.py"), "--port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert upstream.stdout is not None
        port = int(upstream.stdout.readline().split()[1])
        with tempfile.TemporaryDirectory() as tmp:
            base = Path(tmp)
            plain = ProxyProcess(write_config(base / "master", _config(port, None)), log_level="warning")
            metered = ProxyProcess(write_config(base / "key", _config(port, f"sqlite:///{base}/spend.db")),
                                   log_level="warning")
            with plain, metered:
                made = httpx.post(f"{metered.base_url}/key/generate", headers={"authorization": f"Bearer {MASTER}"},
                                  json={"max_budget": 1e6, "rpm_limit": 10**9, "tpm_limit": 10**12}, timeout=30)
                made.raise_for_status()
                key = made.json()["key"]
                cells = {"master": (f"{plain.base_url}/v1/chat/completions", MASTER, plain.process.pid),
                         "master-db": (f"{metered.base_url}/v1/chat/completions", MASTER, metered.process.pid),
                         "key": (f"{metered.base_url}/v1/chat/completions", key, metered.process.pid)}
                for url, secret, _pid in cells.values():  # warm-up: connections, key cache, first-use paths
                    _loadgen(url, secret, args.clients, 1.0)
                rows: list[dict[str, float]] = []
                for index in range(args.rounds):
                    order = list(cells) if index % 2 == 0 else list(reversed(cells))
                    row: dict[str, float] = {}
                    for name in order:
                        url, secret, pid = cells[name]
                        loaded = _loadgen(url, secret, args.clients, args.duration, pid)
                        row[f"{name}_rps"] = loaded["rps"]
                        row[f"{name}_cpu"] = loaded.get("cpu_us", float("nan"))
                        row[f"{name}_p50"] = _loadgen(url, secret, 1, args.duration)["latency_ms"]["p50"]
                    rows.append(row)
                    print(f"round {index + 1}: " + _line(row, args.clients), flush=True)
                time.sleep(1.5)       # the writer's last flush, so the row count below is final
                logs = httpx.get(f"{metered.base_url}/global/spend", headers={"authorization": f"Bearer {MASTER}"},
                                 timeout=30).json()
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(f"medians over {args.rounds} interleaved rounds ({args.duration:g} s cells, non-streaming): "
          + _line(med, args.clients)
          + f"; median ratios key/master {statistics.median(r['key_rps'] / r['master_rps'] for r in rows):.1%}, "
          f"key/master-db {statistics.median(r['key_rps'] / r['master-db_rps'] for r in rows):.1%}; "
          f"median added p50 key-master {statistics.median(r['key_p50'] - r['master_p50'] for r in rows):+.3f} ms, "
          f"key-master-db {statistics.median(r['key_p50'] - r['master-db_p50'] for r in rows):+.3f} ms; "
          f"median CPU/request ratios master/key {statistics.median(r['master_cpu'] / r['key_cpu'] for r in rows):.1%}, "
          f"master-db/key {statistics.median(r['master-db_cpu'] / r['key_cpu'] for r in rows):.1%}; "
          f"spend recorded: {logs.get('spend')} USD")


def _line(row: dict[str, float], clients: int) -> str:
    rps = ", ".join(f"{name} {row[f'{name}_rps']:.0f}" for name in ("master", "master-db", "key"))
    p50 = ", ".join(f"{name} {row[f'{name}_p50']:.3f}" for name in ("master", "master-db", "key"))
    cpu = ", ".join(f"{name} {row[f'{name}_cpu']:.0f}" for name in ("master", "master-db", "key"))
    return f"{clients} clients rps: {rps}; proxy CPU µs/request: {cpu}; 1 client p50 ms: {p50}"


if __name__ == "__main__":
    main()
