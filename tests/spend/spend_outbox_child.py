"""A proxy stand-in for the kill -9 test: hands off spend records, then waits to be killed.

    python spend_outbox_child.py DB_URL OUTBOX_DIR ANSWERED IN_FLIGHT

It opens the store and a SpendWriter whose first batch is committed and whose second write never
returns (the database write in flight at the moment of the crash). It hands off ANSWERED records
(admitted + final: the client "got its answer") and IN_FLIGHT admissions without a final, then
prints READY once the second write is stuck, and sleeps until the test kills it with SIGKILL.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import trio

from trioproxy.spend import KeyIdentity, RecordInputs, SpendWriter, build_record
from trioproxy.store import Store, open_store


class StallAfterFirst:
    def __init__(self, store: Store):
        self.store = store
        self.calls = 0
        self.stuck = trio.Event()

    async def write(self, rows: Sequence[Mapping[str, Any]]) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            return await self.store.spend.write(rows)
        self.stuck.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")


def make(i: int, now: float) -> RecordInputs:
    return RecordInputs(request_id=f"req-{i}", call_type="acompletion", start_time=now, end_time=now + 0.2,
                        identity=KeyIdentity(api_key="a" * 64, team_id="t1", user_id="u1"), model="gpt-4o",
                        model_group="gpt-4o", spend_micros=1000 + i, prompt_tokens=10, completion_tokens=5,
                        end_user="cust", reserved_micros=5000)


async def main(db_url: str, outbox_dir: str, answered: int, in_flight: int) -> None:
    async with open_store(db_url, migrate=False) as store:
        sink = StallAfterFirst(store)
        writer = SpendWriter(sink, outbox_dir, batch_size=max(1, answered // 2), flush_interval=0.01)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            now = time.time()
            for i in range(answered):
                item = make(i, now)
                writer.admitted(item)
                writer.finished(build_record(item))
            for i in range(answered, answered + in_flight):
                writer.admitted(make(i, now))
            await sink.stuck.wait()
            print("READY", flush=True)
            await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
