"""Operational metrics wiring: the shared status rows (`SqlOpsStatus`) and database pool instrumentation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.pool import QueuePool

from rulesvc.opsstate import OpsStatus
from rulesvc.storage.ops_store import SqlOpsStatus
from rulesvc.storage.report_rollups import roll_closed


class PoolObserver(Protocol):
    def pool_in_use(self, pool: str, delta: int) -> None: ...

    def pool_capacity(self, pool: str, size: int) -> None: ...

    def pool_waited(self, pool: str) -> None: ...

    def pool_timed_out(self, pool: str) -> None: ...


def ops_status(engine: Engine) -> OpsStatus:
    return SqlOpsStatus(engine)


def instrument_pool(engine: Engine, name: str, observer: PoolObserver) -> None:
    """Report `engine`'s pool to `observer`: connections in use (checkouts minus checkins), its capacity
    (size plus overflow), checkouts that found every connection taken and had to wait, and waits that ended
    in `sqlalchemy.exc.TimeoutError` (after `RULESVC_DB_POOL_TIMEOUT`)."""

    observer.pool_in_use(name, engine.pool.checkedout() if isinstance(engine.pool, QueuePool) else 0)

    @event.listens_for(engine, "checkout")
    def _checkout(*_args: Any) -> None:
        observer.pool_in_use(name, 1)

    @event.listens_for(engine, "checkin")
    def _checkin(*_args: Any) -> None:
        observer.pool_in_use(name, -1)

    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return
    overflow = int(getattr(pool, "_max_overflow", 0))
    capacity = pool.size() + max(overflow, 0)
    observer.pool_capacity(name, capacity)
    original: Callable[[], Any] = getattr(pool, "_do_get")  # noqa: B009

    def do_get() -> Any:
        if overflow >= 0 and pool.checkedout() >= capacity:
            observer.pool_waited(name)
        try:
            return original()
        except sa_exc.TimeoutError:
            observer.pool_timed_out(name)
            raise

    setattr(pool, "_do_get", do_get)  # noqa: B010


def report_rollups(engine: Engine) -> Callable[[], int] | None:
    """The worker's job rolling up the reports' closed days (`rulesvc.storage.report_rollups`; PostgreSQL
    only, None elsewhere)."""
    if engine.dialect.name != "postgresql":
        return None
    return lambda: roll_closed(engine, datetime.now(UTC))
