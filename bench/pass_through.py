"""What a pass-through endpoint adds: the same requests to a fake target, directly and through trioproxy.

Usage (from the repository root)::

    .venv/bin/python bench/pass_through.py [--rounds 5] [--requests 300] [--body-kb 64]

One client, sequential keep-alive requests (``http.client``, so the client costs little), a
``POST`` with a body of ``--body-kb`` KiB answered with the same size; rounds alternate direct and
proxied so drift of a shared machine affects both alike. Prints per-round p50/p99 and the medians.
The fake target is the tests' (``tests/support/fake_target.py``: trio + h11 in a thread).
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.fake_target import Answer, FakeTarget  # noqa: E402
from support.proxy_process import ProxyProcess, write_config  # noqa: E402


def _timings(port: int, path: str, body: bytes, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            conn.request("POST", path, body=body, headers={"Content-Type": "application/octet-stream"})
            response = conn.getresponse()
            response.read()
            out.append(time.perf_counter() - start)
            assert response.status == 200, response.status
    finally:
        conn.close()
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--body-kb", type=int, default=64)
    args = parser.parse_args()
    body = b"x" * (args.body_kb * 1024)
    with FakeTarget() as target, tempfile.TemporaryDirectory() as tmp:
        target.answer = Answer(headers=[("content-type", "application/octet-stream")], parts=[body])
        config = {"model_list": [{"model_name": "m", "litellm_params": {"model": "fake/m"}}],
                  "general_settings": {"pass_through_endpoints": [
                      {"path": "/pt", "target": target.base_url + "/x", "auth": False}]}}
        with ProxyProcess(write_config(Path(tmp), config), log_level="warning") as proxy:
            proxy_port = int(proxy.base_url.rsplit(":", 1)[1])
            _timings(proxy_port, "/pt", body, 50)            # warm-up: connections, first-use paths
            _timings(target.port, "/x", body, 50)
            rows = []
            for index in range(args.rounds):
                direct = _timings(target.port, "/x", body, args.requests)
                proxied = _timings(proxy_port, "/pt", body, args.requests)
                target.requests.clear()
                rows.append((_pct(direct, .5), _pct(proxied, .5), _pct(direct, .99), _pct(proxied, .99)))
                print(f"round {index + 1}: direct p50 {rows[-1][0]:.2f} ms, proxied p50 {rows[-1][1]:.2f} ms; "
                      f"p99 {rows[-1][2]:.2f} / {rows[-1][3]:.2f} ms")
    medians = [statistics.median(col) for col in zip(*rows, strict=True)]
    print(f"medians over {args.rounds} rounds of {args.requests} requests, {args.body_kb} KiB each way: "
          f"p50 direct {medians[0]:.2f} ms, proxied {medians[1]:.2f} ms (+{medians[1] - medians[0]:.2f}); "
          f"p99 direct {medians[2]:.2f} ms, proxied {medians[3]:.2f} ms (+{medians[3] - medians[2]:.2f})")


if __name__ == "__main__":
    main()
