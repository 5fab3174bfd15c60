"""Memory the spend writer holds per request while the store is down (tracemalloc, Python heap).

Hands ``--records`` admitted + final hand-offs to a SpendWriter whose store never answers, once
with a queue large enough for all of them and once with ``max_queued=100`` (the rest spilled to the
outbox only), and prints the heap growth per pending request.

    .venv/bin/python bench/spend_writer_memory.py [--records 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import tracemalloc
from typing import Any

import trio

from trioproxy.spend import KeyIdentity, RecordInputs, SpendWriter, build_record


class _Down:
    async def write(self, rows: Any) -> list[str]:
        await trio.sleep_forever()
        raise AssertionError


def _inputs(i: int) -> RecordInputs:
    return RecordInputs(request_id=f"req-{i:08d}", call_type="acompletion", start_time=1.0e9, end_time=1.0e9 + 1,
                        identity=KeyIdentity(api_key="a" * 64, team_id="t", user_id="u"), model="gpt-4o",
                        model_group="gpt-4o", status="success", spend_micros=1000, prompt_tokens=10,
                        completion_tokens=5, end_user=f"customer-{i}")


def per_request(max_queued: int, records: int) -> float:
    writer = SpendWriter(_Down(), tempfile.mkdtemp(), batch_size=100, max_queued=max_queued)  # type: ignore[arg-type]
    writer.outbox.open()
    items = [_inputs(i) for i in range(records)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for item in items:
        writer.admitted(item)
        writer.finished(build_record(item))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    writer.outbox.close()
    return sum(s.size_diff for s in after.compare_to(before, "filename")) / records


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=5000)
    n = parser.parse_args().records
    print(f"bytes per pending request, all in the queue : {per_request(n + 100, n):.0f}")
    print(f"bytes per pending request, spilled (queue 100): {per_request(100, n):.0f}")


if __name__ == "__main__":
    main()
