"""What the spend layer adds per request on the request path (issue #11: ≤ 0.1 ms added p50).

A key with a budget and an rpm limit (the issue's scenario), its team and user, loaded from a
throwaway SQLite store; the in-process limiter; a running SpendWriter (its background batches go to
the same store while the loop runs). Times, in interleaved rounds:

* ``estimate``          — the reservation estimate of a ~500-character chat prompt;
* ``plan``              — building the limiter checks from the auth record (``plan_checks``);
* ``admit + settle``    — ``Admitter.admit`` (plan + in-process reserve) then ``Reservation.settle``;
* ``hand-off``          — ``writer.admitted`` (the record at admission → outbox) +
  ``record.complete`` + ``writer.finished`` (final record → outbox, queued for the batch writer);
* ``total``             — all of the above for one request.

Each round runs every variant for ``--calls`` calls; per call it reports the median over rounds of
(round time / calls) and the p99 of individually timed calls.

    .venv/bin/python bench/spend_admission.py [--rounds 7] [--calls 5000]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import trio

from trioproxy.auth import hash_key
from trioproxy.coordination import InProcessLimiter
from trioproxy.observability.prices import Price
from trioproxy.spend import KeyIdentity, RecordInputs, SpendWriter
from trioproxy.spend.admission import AdmissionSettings, Admitter, RequestFacts, plan_checks
from trioproxy.spend.estimate import estimate_prompt_tokens, requested_output_tokens
from trioproxy.store import Actor, open_store

BODY = {"model": "gpt-4o", "max_tokens": 256, "user": "customer-1",
        "messages": [{"role": "system", "content": "You are a helpful assistant that answers briefly."},
                     {"role": "user", "content": "Summarise the following text in one sentence. " * 10}]}
PRICE = Price(0.0000025, 0.00001)


async def main(rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(f"sqlite:///{tmp}/bench.db") as store, trio.open_nursery() as nursery:
            actor = Actor("bench")
            await store.teams.create({"team_id": "team"}, [{"user_id": "user", "role": "user"}], actor)
            key = "sk-bench-" + "x" * 40
            await store.keys.create({"token": hash_key(key), "key_name": "sk-...xxxx", "user_id": "user",
                                     "team_id": "team", "max_budget": 10**15, "rpm_limit": 10**9}, actor)
            auth = await store.key_cache.authenticate(key)
            writer = SpendWriter(store.spend, f"{tmp}/outbox")
            await nursery.start(writer.run)
            limiter = InProcessLimiter()
            settings = AdmissionSettings()
            admitter = Admitter(limiter, settings)
            ids = (f"req-{i}" for i in itertools.count())
            identity = KeyIdentity.from_auth_record(auth)

            def facts() -> RequestFacts:
                return RequestFacts(model="gpt-4o", end_user=BODY["user"], prompt_tokens=estimate_prompt_tokens(BODY),
                                    output_tokens=requested_output_tokens(BODY, 4096), price=PRICE)

            fixed = facts()

            async def v_estimate() -> None:
                facts()

            async def v_plan() -> None:
                plan_checks(auth, fixed, settings, now=time.time())

            async def v_admit() -> None:
                r = await admitter.admit(next(ids), auth, fixed)
                await r.settle(tokens=300, cost_micros=1000)

            def hand_off(rid: str) -> None:
                now = time.time()
                inputs = RecordInputs(request_id=rid, call_type="acompletion", start_time=now, end_time=now,
                                      identity=identity, model="gpt-4o", model_group="gpt-4o",
                                      end_user="customer-1", request_metadata={"tags": ["bench"]})
                record = writer.admitted(inputs)
                writer.finished(record.complete(end_time=time.time(), spend_micros=1000, prompt_tokens=100,
                                                completion_tokens=200))

            async def v_hand_off() -> None:
                hand_off(next(ids))

            async def v_total() -> None:
                rid = next(ids)
                r = await admitter.admit(rid, auth, facts())
                hand_off(rid)
                await r.settle(tokens=300, cost_micros=1000)

            variants: dict[str, Callable[[], Awaitable[None]]] = {
                "estimate": v_estimate, "plan": v_plan, "admit + settle": v_admit, "hand-off": v_hand_off,
                "total": v_total}
            per_call: dict[str, list[float]] = {name: [] for name in variants}
            singles: dict[str, list[int]] = {name: [] for name in variants}
            for r in range(rounds):
                order = list(variants.items())
                if r % 2:
                    order.reverse()
                for name, fn in order:
                    start = time.perf_counter()
                    for _ in range(calls):
                        await fn()
                    per_call[name].append((time.perf_counter() - start) / calls * 1e6)
                    sample = singles[name]
                    for _ in range(min(calls, 2000)):
                        t0 = time.perf_counter_ns()
                        await fn()
                        sample.append(time.perf_counter_ns() - t0)
                    await writer.drain(60)         # the batch writer catches up between variants
            assert limiter.open_reservations == 0
            stored = await store.db.read(lambda c: c.scalar('SELECT COUNT(*) AS n FROM "spend_logs"'))
            nursery.cancel_scope.cancel()

    print(f"Spend layer per request, {rounds} interleaved rounds x {calls} calls (Python "
          f"{platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"a shared machine: read the figures as orders of magnitude). {stored} records stored.\n")
    print("| what | median µs per call | p99 µs (single calls) |")
    print("|---|---|---|")
    for name in variants:
        med = statistics.median(per_call[name])
        p99 = sorted(singles[name])[int(len(singles[name]) * 0.99)] / 1000
        print(f"| {name} | {med:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    trio.run(main, args.rounds, args.calls)
