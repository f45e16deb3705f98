"""Group commit: concurrent appends of one process share one transaction (one lock, one fsync).

Appends to the decision log are serialized across processes by the chain-head lock, held until commit, so
one append per transaction caps throughput at 1 / (lock hold time) — about 1 / fsync on PostgreSQL. A
`GroupCommitter` lets the callers that arrive while a transaction is in flight queue up; a single writer
thread then commits all of them in the next transaction and hands each caller its own result. Every item
is still committed atomically (its decision, actions and chain entry in one transaction), callers still
return only after their commit, and chain order is still commit order.

If a batch fails as a whole, its items are retried one by one, so one bad item fails only its own caller.
The writer thread starts on the first submit and ends after `idle_seconds` without work (or on `close`).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Pending(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | None = None
    error: BaseException | None = None
    callback: Callable[[R | None, BaseException | None], None] | None = None

    def settle(self) -> None:
        self.done.set()
        if self.callback is not None:
            self.callback(self.result, self.error)


_STOP = object()


class GroupCommitter(Generic[T, R]):
    def __init__(
        self,
        commit_batch: Callable[[Sequence[T]], Sequence[R]],
        max_batch: int = 64,
        idle_seconds: float = 5.0,
        name: str = "group-commit",
    ) -> None:
        self._commit_batch = commit_batch
        self._max_batch = max_batch
        self._idle_seconds = idle_seconds
        self._name = name
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, item: T) -> R:
        """Commit `item` (with whatever else is waiting) and return its result; raises its error."""
        pending = self._enqueue(_Pending(item))
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result  # type: ignore[return-value]

    def submit_later(self, item: T, callback: Callable[[R | None, BaseException | None], None]) -> None:
        """Queue `item` and return at once; `callback(result, error)` runs on the writer thread after commit."""
        self._enqueue(_Pending(item, callback=callback))

    def _enqueue(self, pending: _Pending[T, R]) -> _Pending[T, R]:
        with self._lock:
            if self._closed:
                raise RuntimeError("group committer is closed")
            self._queue.put(pending)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return pending

    def close(self) -> None:
        """Refuse new items, finish the queued ones, stop the writer thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._queue.put(_STOP)
        if thread is not None:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._idle_seconds)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            if first is _STOP:
                with self._lock:
                    self._thread = None
                return
            batch = [first]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            self._commit(batch)
            if stop:
                with self._lock:
                    self._thread = None
                return

    def _commit(self, batch: list[_Pending[T, R]]) -> None:
        try:
            results = self._commit_batch([p.item for p in batch])
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].settle()
                return
            for pending in batch:  # isolate the failing item(s)
                self._commit([pending])
            return
        for pending, result in zip(batch, results, strict=True):
            pending.result = result
            pending.settle()
