"""Alembic environment: runs on the connection `rulesvc.storage.engine.migrate` passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from rulesvc.storage.tables import Base

target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError("run migrations through rulesvc.storage.engine.migrate(engine)")
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline migrations are not supported; use rulesvc.storage.engine.migrate")
run_migrations_online()
