"""Principals (people and service accounts); every API key belongs to one. Keys stored before each get a
service account of their own (`s_<key_id>`, named by the key's label, holding the key's roles), so every
key keeps working and four eyes still tells those keys apart.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    principals = op.create_table(
        "principals",
        sa.Column("principal_id", sa.String(16), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("username", sa.String(200), nullable=True, unique=True),
        sa.Column("roles", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("owner_id", sa.String(16), nullable=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("totp_secret", sa.String(64), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", TZ, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("principal_id", sa.String(16), nullable=True))
        batch.create_index("ix_api_keys_principal_id", ["principal_id"])
    conn = op.get_bind()
    keys = sa.table(
        "api_keys",
        sa.column("key_id", sa.String),
        sa.column("roles", sa.String),
        sa.column("label", sa.String),
        sa.column("principal_id", sa.String),
    )
    now = datetime.now(UTC)
    if conn.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)
    for key_id, roles, label in conn.execute(sa.select(keys.c.key_id, keys.c.roles, keys.c.label)).all():
        principal_id = f"s_{key_id}"
        conn.execute(
            sa.insert(principals).values(
                principal_id=principal_id,
                kind="service",
                name=(label or "").strip()[:200] or f"API 密钥 {key_id}",
                username=None,
                roles=roles,
                disabled=False,
                owner_id=None,
                failed_logins=0,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(sa.update(keys).where(keys.c.key_id == key_id).values(principal_id=principal_id))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index("ix_api_keys_principal_id")
        batch.drop_column("principal_id")
    op.drop_table("principals")
