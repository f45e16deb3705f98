"""Pooled random ids: valid version-4 UUIDs, never repeated, and never shared with a forked child."""

from __future__ import annotations

import os

from rulesvc.entropy import random_bytes, token_hex, uuid4


def test_uuids_are_version_4_and_unique_across_pool_refills() -> None:
    ids = [uuid4() for _ in range(20_000)]  # about 80 refills of the pool
    assert all(u.version == 4 and u.variant == "specified in RFC 4122" for u in ids)
    assert len(set(ids)) == len(ids)
    assert len(token_hex(16)) == 32 and len({token_hex(16) for _ in range(1000)}) == 1000


def test_a_forked_child_draws_its_own_bytes() -> None:
    random_bytes(8)  # the parent's pool holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: send what it would hand out next
        os.write(write, random_bytes(32))
        os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.close(read)
    os.waitpid(pid, 0)
    parent = random_bytes(32)
    assert len(child) == 32 and child != parent
