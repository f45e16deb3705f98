"""The collector is paused while a large file is read, and comes back as it was, nested or not."""

from __future__ import annotations

import gc
import threading

from rulesvc import gcpause


def test_paused_and_restored() -> None:
    assert gc.isenabled()
    with gcpause.paused():
        assert not gc.isenabled()
        with gcpause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer reader is still reading
    assert gc.isenabled()


def test_restored_after_an_error() -> None:
    try:
        with gcpause.paused():
            raise ValueError("broken file")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled() -> None:
    gc.disable()
    try:
        with gcpause.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_concurrent_readers_enable_it_when_the_last_leaves() -> None:
    inside, leave = threading.Barrier(2), threading.Event()

    def read() -> None:
        with gcpause.paused():
            inside.wait()
            leave.wait()

    other = threading.Thread(target=read)
    other.start()
    with gcpause.paused():
        inside.wait()
    assert not gc.isenabled()  # the other reader has not left
    leave.set()
    other.join()
    assert gc.isenabled()
