"""kill -9 of a process with spend records in its outbox: nothing answered is lost, nothing counted
twice. A real child process (``spend_outbox_child.py``) hands off records, commits half of them,
gets stuck in the second database write, and is killed with SIGKILL at that barrier; a new writer
then replays its outbox. Both backends."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import trio

from trioproxy.spend import SpendWriter, find_orphans
from trioproxy.spend.record import PROXY_RESTARTED
from trioproxy.store import Actor, Store

from .spend_helpers import assert_aggregates_match, rows, scalar, segments

CHILD = Path(__file__).with_name("spend_outbox_child.py")
ANSWERED = 40
IN_FLIGHT = 3


async def _kill_child_at_barrier(db_url: str, outbox_dir: Path) -> None:
    proc = await trio.lowlevel.open_process(
        [sys.executable, str(CHILD), db_url, str(outbox_dir), str(ANSWERED), str(IN_FLIGHT)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        out = b""
        assert proc.stdout is not None
        while b"\n" not in out:
            chunk = await proc.stdout.receive_some()
            assert chunk, f"the child exited before its barrier: {out!r}"
            out += chunk
        assert out.strip() == b"READY", out
        # a live process's outbox is never replayed by another (its lock is held)
        assert await trio.to_thread.run_sync(find_orphans, outbox_dir) == []
        proc.send_signal(signal.SIGKILL)                     # the barrier: records handed off, a write stuck
    finally:
        with trio.CancelScope(shield=True):
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
    assert proc.returncode == -signal.SIGKILL


async def test_kill_9_loses_nothing_and_replay_counts_once(store: Store, db_url: str, outbox_dir: Path,
                                                          tmp_path: Path) -> None:
    await store.teams.create({"team_id": "t1"}, [], Actor("admin"))
    await store.users.create({"user_id": "u1"}, Actor("admin"), teams_to_join=["t1"])
    await store.keys.create({"token": "a" * 64, "key_name": "sk-...aaaa", "team_id": "t1", "user_id": "u1"},
                            Actor("admin"))
    await _kill_child_at_barrier(db_url, outbox_dir)

    committed_before = await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"')
    assert committed_before == ANSWERED // 2                 # the first batch made it before the kill
    copy = tmp_path / "outbox-copy"
    shutil.copytree(outbox_dir, copy)                        # to replay the same outbox a second time

    # the restarted proxy: its writer replays the dead process's outbox before it reports started
    writer = SpendWriter(store.spend, outbox_dir)
    async with trio.open_nursery() as nursery:
        await nursery.start(writer.run)
        nursery.cancel_scope.cancel()
    assert writer.replayed == ANSWERED - ANSWERED // 2 + IN_FLIGHT

    logs = await rows(store, 'SELECT "request_id", "status", "spend", "metadata" FROM "spend_logs"')
    ids = [r["request_id"] for r in logs]
    assert len(ids) == len(set(ids)) == ANSWERED + IN_FLIGHT
    answered = [r for r in logs if r["status"] == "success"]
    assert sorted(r["request_id"] for r in answered) == sorted(f"req-{i}" for i in range(ANSWERED))
    assert sum(r["spend"] for r in answered) == sum(1000 + i for i in range(ANSWERED))
    lost = [r for r in logs if r["status"] == "failure"]
    assert sorted(r["request_id"] for r in lost) == sorted(f"req-{i}" for i in range(ANSWERED, ANSWERED + IN_FLIGHT))
    for r in lost:
        meta = r["metadata"] if isinstance(r["metadata"], dict) else json.loads(r["metadata"])
        assert r["spend"] == 0 and meta["error_information"]["error_message"] == PROXY_RESTARTED
    await assert_aggregates_match(store)
    assert not segments(outbox_dir)                          # replayed and removed

    # replaying the very same outbox again (a crash right after the commit) counts nothing twice
    again = SpendWriter(store.spend, copy)
    async with trio.open_nursery() as nursery:
        await nursery.start(again.run)
        nursery.cancel_scope.cancel()
    assert again.replayed == 0
    assert await scalar(store, 'SELECT COUNT(*) AS n FROM "spend_logs"') == ANSWERED + IN_FLIGHT
    await assert_aggregates_match(store)
