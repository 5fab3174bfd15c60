"""How fast the background writer stores spend records (ledger + aggregates, exactly once).

Hands ``--records`` records (spread over 50 keys in 5 teams, 200 customers, 3 tags) to a
SpendWriter and times until ``drain`` returns: rows per second, for SQLite and, with ``--pg DSN``
(a database the run may fill; e.g. the suite's ``$TEST_PG_DSN``), PostgreSQL.

    .venv/bin/python bench/spend_writer.py [--records 20000] [--pg postgresql://…]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import trio

from trioproxy.spend import KeyIdentity, RecordInputs, SpendWriter, build_record
from trioproxy.store import Actor, open_store


async def run(url: str, outbox: str, records: int) -> float:
    async with open_store(url) as store:
        actor = Actor("bench")
        suffix = os.urandom(3).hex()
        for t in range(5):
            await store.teams.create({"team_id": f"team-{suffix}-{t}"}, [], actor)
        for k in range(50):
            await store.keys.create({"token": f"{suffix}{k:058d}", "key_name": f"sk-...{k:04d}",
                                     "team_id": f"team-{suffix}-{k % 5}", "max_budget": 10**12}, actor)
        writer = SpendWriter(store.spend, outbox)
        now = time.time()
        items = [build_record(RecordInputs(
            request_id=f"{suffix}-{i}", call_type="acompletion", start_time=now, end_time=now + 0.5,
            identity=KeyIdentity(api_key=f"{suffix}{i % 50:058d}", team_id=f"team-{suffix}-{i % 5}"),
            model="gpt-4o", model_group="gpt-4o", spend_micros=1000, prompt_tokens=100, completion_tokens=50,
            end_user=f"cust-{i % 200}", request_metadata={"tags": [f"tag-{i % 3}"]})) for i in range(records)]
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            start = time.perf_counter()
            for record in items:
                writer.finished(record)
            assert await writer.drain(600)
            elapsed = time.perf_counter() - start
            nursery.cancel_scope.cancel()
        assert writer.written == records
        return records / elapsed


def main(records: int, pg: str | None) -> None:
    print(f"SpendWriter, {records} records (load average {os.getloadavg()[0]:.1f}, shared 2-core machine)\n")
    print("| store | rows/s |")
    print("|---|---|")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        print(f"| SQLite | {trio.run(run, f'sqlite:///{tmp}/bench.db', f'{tmp}/o1', records):,.0f} |")
        if pg:
            print(f"| PostgreSQL | {trio.run(run, pg, f'{tmp}/o2', records):,.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--pg", default=None)
    args = parser.parse_args()
    main(args.records, args.pg)
