"""What authenticating with a virtual key costs on a cache hit (issue #10: well under 50 µs).

Creates a key (with a user and a team, so the record is a realistic one) in a throwaway SQLite
store, loads it once, then times, in interleaved rounds:

* ``sha256``        — hashing the presented key (``trioproxy.auth.hash_key``) alone;
* ``lookup``        — the synchronous cache lookup by hash alone;
* ``authenticate``  — ``await store.key_cache.authenticate(key)``: hash + lookup + blocked/expiry checks;
* ``+ to_auth``     — the same plus ``AuthRecord.to_user_api_key_auth()`` (fresh copies for hooks);
* ``request path, master key`` — what the pipeline runs per request for the master key:
  ``Authenticator.identify(headers)`` + ``Identity.user_api_key_auth()``;
* ``request path, virtual key`` — the same for the virtual key, plus ``apply_key_rules`` (model
  allow-lists of key and team, enforced params, guardrails) on a chat body: the whole cost a
  virtual key adds before the hooks run.

Each round runs every variant for ``--calls`` calls; per call it reports the median over rounds of
(round time / calls) and the p99 of individually timed calls. Prints a Markdown table.

    .venv/bin/python bench/auth_cache.py [--rounds 7] [--calls 20000]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import trio

from trioproxy.auth import Authenticator, apply_key_rules, hash_key
from trioproxy.store import Actor, open_store


async def main(rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with open_store(f"sqlite:///{tmp}/bench.db") as store:
            await store.teams.create({"team_id": "team", "models": ["gpt-4o"], "metadata": {"tags": ["a", "b"]}},
                                     [{"user_id": "user", "role": "user"}], Actor("bench"))
            key = "sk-bench-" + "x" * 40
            await store.keys.create({"token": hash_key(key), "key_name": "sk-...xxxx", "user_id": "user",
                                     "team_id": "team", "models": ["gpt-4o", "gpt-4o-mini"],
                                     "metadata": {"tags": ["k"], "spend_logs_metadata": {"owner": "bench"}},
                                     "permissions": {"hide_secrets": True}, "max_budget": 10_000_000,
                                     "rpm_limit": 100, "tpm_limit": 10_000}, Actor("bench"))
            cache = store.key_cache
            await cache.authenticate(key)                 # the one miss
            token = hash_key(key)
            master = "sk-bench-master-" + "m" * 32
            authenticator = Authenticator(master, cache)
            virtual_headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
            master_headers = {"authorization": f"Bearer {master}", "content-type": "application/json"}
            body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
            guardrails: frozenset[str] = frozenset()

            async def v_sha256() -> None:
                hash_key(key)

            async def v_lookup() -> None:
                cache.lookup(token)

            async def v_authenticate() -> None:
                await cache.authenticate(key)

            async def v_to_auth() -> None:
                (await cache.authenticate(key)).to_user_api_key_auth()

            async def v_master_path() -> None:
                (await authenticator.identify(master_headers)).user_api_key_auth()

            async def v_virtual_path() -> None:
                identity = await authenticator.identify(virtual_headers)
                identity.user_api_key_auth()
                apply_key_rules(identity.record, body, guardrails)

            variants = {"sha256": v_sha256, "lookup": v_lookup, "authenticate": v_authenticate,
                        "authenticate + to_auth": v_to_auth, "request path, master key": v_master_path,
                        "request path, virtual key": v_virtual_path}
            per_call: dict[str, list[float]] = {name: [] for name in variants}
            singles: dict[str, list[int]] = {name: [] for name in variants}
            loads_before = cache.stats.loads
            for r in range(rounds):
                order = list(variants.items())
                if r % 2:
                    order.reverse()                       # interleave: alternate the order every round
                for name, fn in order:
                    start = time.perf_counter()
                    for _ in range(calls):
                        await fn()
                    per_call[name].append((time.perf_counter() - start) / calls * 1e6)
                    sample = singles[name]
                    for _ in range(min(calls, 5000)):
                        t0 = time.perf_counter_ns()
                        await fn()
                        sample.append(time.perf_counter_ns() - t0)
            assert cache.stats.loads == loads_before, "a hit must never load"

    print(f"Cache-hit authentication, {rounds} interleaved rounds x {calls} calls "
          f"(Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; a shared machine: read the figures as orders of magnitude)\n")
    print("| what | median µs per call | p99 µs (single calls) |")
    print("|---|---|---|")
    for name in variants:
        med = statistics.median(per_call[name])
        p99 = sorted(singles[name])[int(len(singles[name]) * 0.99)] / 1000
        print(f"| {name} | {med:.2f} | {p99:.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    trio.run(main, args.rounds, args.calls)
