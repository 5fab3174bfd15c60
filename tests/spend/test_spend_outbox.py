"""The outbox file format and ownership, without a store: frames, torn writes, the committed
offset, rotation and deletion, dead-process detection through the lock file."""

from __future__ import annotations

from pathlib import Path

import pytest

from trioproxy.spend import Outbox, OutboxError, find_orphans, provisional_record
from trioproxy.spend.outbox import ADMITTED, FINAL, HEADER_SIZE, read_segment
from trioproxy.spend.record import PROXY_RESTARTED, SpendRecord

from .spend_helpers import inputs, record


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def test_frames_round_trip(outbox_dir: Path) -> None:
    box = Outbox(outbox_dir, segment_size=64 * 1024)
    box.open()
    box.append(ADMITTED, provisional_record(inputs("r1")).to_json())
    box.append(FINAL, record("r1").to_json())
    frames = list(read_segment(_segments(outbox_dir)[0]))
    assert [k for k, _ in frames] == [ADMITTED, FINAL]
    assert SpendRecord.from_json(frames[1][1]) == record("r1")
    box.close()


def test_a_torn_frame_ends_the_segment(outbox_dir: Path) -> None:
    box = Outbox(outbox_dir, segment_size=64 * 1024)
    box.open()
    box.append(FINAL, record("r1").to_json())
    last = box.append(FINAL, record("r2").to_json())
    path = _segments(outbox_dir)[0]
    # the process died in the middle of copying r2: its last bytes never arrived
    with open(path, "r+b") as f:
        f.seek(last.end - 3)
        f.write(b"\0\0\0")
    frames = list(read_segment(path))
    assert [SpendRecord.from_json(p).request_id for _, p in frames] == ["r1"]
    box.close()


def test_resolved_prefix_moves_the_committed_offset(outbox_dir: Path) -> None:
    box = Outbox(outbox_dir, segment_size=64 * 1024)
    box.open()
    e1 = box.append(FINAL, record("r1").to_json())
    e2 = box.append(FINAL, record("r2").to_json())
    e3 = box.append(FINAL, record("r3").to_json())
    box.resolve([e2])                       # not a prefix: nothing skipped yet
    path = _segments(outbox_dir)[0]
    assert len(list(read_segment(path))) == 3
    box.resolve([e1])                       # r1 and r2 resolved: replay starts at r3
    assert [SpendRecord.from_json(p).request_id for _, p in read_segment(path)] == ["r3"]
    assert e3.segment.committed == e2.end > HEADER_SIZE
    box.close()


def test_rotation_and_deletion_of_resolved_segments(outbox_dir: Path) -> None:
    box = Outbox(outbox_dir, segment_size=HEADER_SIZE + 4096)
    box.open()
    entries = [box.append(FINAL, record(f"r{i}").to_json()) for i in range(30)]
    assert box.sync_rotations > 0            # no writer prepared spares here
    assert box.segment_count > 3
    deletable = box.resolve(entries[:-1])
    box.delete(deletable)
    # every segment but the active one (holding the last, unresolved record) and the spare is gone
    assert box.segment_count <= 2
    assert box.unresolved == 1
    box.close()
    orphans = find_orphans(outbox_dir)
    assert [r.request_id for r in orphans[0].load()] == ["r29"]


def test_a_live_outbox_is_never_taken_for_a_dead_one(outbox_dir: Path) -> None:
    live = Outbox(outbox_dir, segment_size=64 * 1024)
    live.open()
    live.append(FINAL, record("r1").to_json())
    assert find_orphans(outbox_dir) == []            # its lock is held
    twin = Outbox(outbox_dir, segment_size=64 * 1024)
    twin.group = live.group
    with pytest.raises(OutboxError):
        twin.open()
    live.close()


def test_a_dead_outbox_replays_finals_over_provisionals(outbox_dir: Path) -> None:
    dead = Outbox(outbox_dir, segment_size=64 * 1024)
    dead.open()
    dead.append(ADMITTED, provisional_record(inputs("answered", spend=5)).to_json())
    dead.append(ADMITTED, provisional_record(inputs("in-flight", spend=7)).to_json())
    dead.append(FINAL, record("answered", spend=5).to_json())
    dead.close()                                      # the lock is released, as at process death
    [orphan] = find_orphans(outbox_dir)
    assert find_orphans(outbox_dir) == []             # we hold it now
    by_id = {r.request_id: r for r in orphan.load()}
    assert by_id["answered"].status == "success" and by_id["answered"].spend == 5
    lost = by_id["in-flight"]
    assert lost.status == "failure" and lost.spend == 0
    assert lost.metadata["error_information"]["error_message"] == PROXY_RESTARTED
    assert lost.end_time >= lost.start_time
    orphan.remove()
    assert list(outbox_dir.iterdir()) == []


def test_a_segment_rotated_out_with_everything_resolved_is_deleted(outbox_dir: Path) -> None:
    """Low traffic: each record is committed before the next arrives, so when the active segment fills
    up every entry in it is already resolved. No later resolve touches it: it must still be deleted,
    not kept open (a mapping, a descriptor and a segment file per rotation) for the process's life."""
    box = Outbox(outbox_dir, segment_size=HEADER_SIZE + 4096)
    box.open()
    for i in range(60):
        entry = box.append(FINAL, record(f"r{i}").to_json())
        box.delete(box.resolve([entry]))
    assert box.sync_rotations > 3                     # it did rotate, several times
    assert box.segment_count <= 2                     # the active one (and at most one not yet deleted)
    assert len(_segments(outbox_dir)) == box.segment_count
    box.close()
