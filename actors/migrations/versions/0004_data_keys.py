"""Tenant data keys (wrapped), tenant tombstones, LoRA ids that are never reused.

``model_versions.lora_id`` is an engine's LoRA id: reusing the id of a deleted row would let an
engine serve its cached adapter of a deleted tenant to another. SQLite reuses ``max(rowid) + 1``
unless the table is ``AUTOINCREMENT``, so the table is rebuilt with it there (PostgreSQL's
sequences never reuse values).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("wrapped_key", sa.LargeBinary),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True)),
    )
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True)))
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "model_versions", recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("model_versions", recreate="always"):
            pass
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("deleted_at")
    op.drop_table("data_keys")
