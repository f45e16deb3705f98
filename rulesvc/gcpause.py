"""Pausing the cyclic garbage collector while a large file is read.

Reading a 5,000-row ruleset or sheet builds a few hundred thousand containers, none of them garbage yet:
every 700 allocations the collector walks the young ones, and every few of those walks the whole heap that
keeps growing — half of the load's time, for nothing (bench/loading). `paused()` switches it off for the
duration (counted, so nested and concurrent readers re-enable it only when the last one leaves); reference
counting still frees everything that is not in a cycle, and the next collection after it finds the rest.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
