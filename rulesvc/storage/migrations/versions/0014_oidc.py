"""OIDC sign-in: the identity a person signs in with (issuer and subject, unique) on their principal row,
and the sign-ins under way (state, nonce and PKCE verifier between the redirect to the provider and the
callback; only the SHA-256 of the state is the key, each row is used once).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("principals") as batch:
        batch.add_column(sa.Column("oidc_subject", sa.String(400), nullable=True))
        batch.create_unique_constraint("uq_principals_oidc_subject", ["oidc_subject"])
    op.create_table(
        "oidc_logins",
        sa.Column("state_hash", sa.String(64), primary_key=True),
        sa.Column("nonce", sa.String(100), nullable=False),
        sa.Column("code_verifier", sa.String(200), nullable=False),
        sa.Column("next_url", sa.String(500), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index("ix_oidc_logins_expires_at", "oidc_logins", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_oidc_logins_expires_at", "oidc_logins")
    op.drop_table("oidc_logins")
    with op.batch_alter_table("principals") as batch:
        batch.drop_constraint("uq_principals_oidc_subject", type_="unique")
        batch.drop_column("oidc_subject")
