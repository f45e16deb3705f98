"""Random identifiers for the decision hot path: decision ids, input salts, request ids.

Cryptographic quality (from `os.urandom`) at a fraction of the cost: the kernel is asked for 4 KiB at a
time instead of 16 bytes per id. Under load the per-id system call was not the cost itself; `os.urandom`
releases the GIL, so each call let the database writer thread take the interpreter for up to a switch
interval while a request waited. The pool is per process and refilled after `fork`, so processes never
share bytes.
"""

from __future__ import annotations

import os
import threading
import uuid

_CHUNK = 4096


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            if self._offset + n > len(self._buffer):
                self._buffer = os.urandom(max(_CHUNK, n))
                self._offset = 0
            start = self._offset
            self._offset += n
            return self._buffer[start : self._offset]

    def reset(self) -> None:
        """In a forked child: forget the parent's bytes, and its lock (another thread may have held it)."""
        self._lock = threading.Lock()
        self._buffer, self._offset = b"", 0


_pool = _Pool()
os.register_at_fork(after_in_child=_pool.reset)


def random_bytes(n: int) -> bytes:
    """`n` bytes from the operating system's CSPRNG (each byte handed out once)."""
    return _pool.take(n)


def uuid4() -> uuid.UUID:
    """A random (version 4) UUID, as `uuid.uuid4()`."""
    return uuid.UUID(bytes=random_bytes(16), version=4)


def token_hex(nbytes: int) -> str:
    """As `secrets.token_hex`."""
    return random_bytes(nbytes).hex()
