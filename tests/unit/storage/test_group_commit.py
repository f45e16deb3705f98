"""GroupCommitter: concurrent submits share batches; a failing item fails only its own caller."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from rulesvc.storage.group_commit import GroupCommitter


def test_concurrent_submits_are_batched_and_answered_in_order() -> None:
    batches: list[list[int]] = []
    gate = threading.Event()

    def commit(items: Sequence[int]) -> list[int]:
        gate.wait(5)
        batches.append(list(items))
        return [i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(commit, max_batch=64)
    results: dict[int, int] = {}

    def call(i: int) -> None:
        results[i] = committer.submit(i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    # The first item's commit holds the writer at the gate; let the other 19 queue up behind it.
    deadline = time.monotonic() + 5
    while committer._queue.qsize() < 19 and time.monotonic() < deadline:
        time.sleep(0.001)
    gate.set()
    for t in threads:
        t.join(5)
    committer.close()
    assert results == {i: i * 10 for i in range(20)}
    assert sum(len(b) for b in batches) == 20 and len(batches) <= 2


def test_failing_item_fails_alone() -> None:
    def commit(items: Sequence[int]) -> list[int]:
        if 3 in items:
            raise ValueError("bad item 3")
        return list(items)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)
    outcomes: dict[int, object] = {}
    done = threading.Event()

    def record(i: int) -> None:
        def callback(result: int | None, error: BaseException | None) -> None:
            outcomes[i] = error if error is not None else result
            if len(outcomes) == 6:
                done.set()

        committer.submit_later(i, callback)

    for i in range(6):
        record(i)
    assert done.wait(5)
    committer.close()
    assert isinstance(outcomes.pop(3), ValueError)
    assert outcomes == {0: 0, 1: 1, 2: 2, 4: 4, 5: 5}
    with pytest.raises(RuntimeError, match="closed"):
        committer.submit(1)


def test_writer_thread_stops_when_idle_and_restarts() -> None:
    committer: GroupCommitter[int, int] = GroupCommitter(lambda items: list(items), idle_seconds=0.05)
    assert committer.submit(1) == 1
    threading.Event().wait(0.3)
    assert committer._thread is None
    assert committer.submit(2) == 2
    committer.close()
