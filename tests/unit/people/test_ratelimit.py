from __future__ import annotations

from rulesvc.people.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_sliding_window_per_address_and_one_trip_report_per_window() -> None:
    clock = Clock()
    trips: list[tuple[str, int]] = []
    limiter = RateLimiter(3, 60, lambda key, count: trips.append((key, count)), now=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    assert limiter.hit("b") is None  # another address has its own count
    assert limiter.retry_after("a") == 60
    assert limiter.hit("a") == 60 and limiter.hit("a") == 60
    assert trips == [("a", 4)]
    clock.now += 30
    assert limiter.hit("a") == 30
    clock.now += 30  # the first three fall out of the window
    assert limiter.retry_after("a") is None and limiter.hit("a") is None
    assert trips == [("a", 4)]


def test_zero_disables() -> None:
    limiter = RateLimiter(0, 60)
    assert not limiter.enabled
    assert all(limiter.hit("a") is None for _ in range(100))


def test_memory_is_bounded() -> None:
    clock = Clock()
    limiter = RateLimiter(1, 60, now=clock, max_keys=10)
    for n in range(100):
        limiter.hit(f"k{n}")
    assert len(limiter._seen) <= 10
