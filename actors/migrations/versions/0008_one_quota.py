"""One quota: the nominal GPU quota becomes a column of ``quotas``, beside the request quotas.

Each column of ``quotas`` is now made from a field of ``cluster.settings.TenantLimits``: the
broker's ``gpu_quotas`` table is folded into ``quotas.nominal_gpus`` (values kept), and the
integer limits become 64-bit like ``storage_bytes``.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_INTEGERS = ("tokens_per_min", "concurrent_jobs")


def upgrade() -> None:
    with op.batch_alter_table("quotas") as batch:
        batch.add_column(sa.Column("nominal_gpus", sa.Float))
        for column in _INTEGERS:
            batch.alter_column(column, type_=sa.BigInteger, existing_type=sa.Integer)
    # a tenant with a GPU quota and no other override gets a row of its own
    op.execute(
        "INSERT INTO quotas (tenant_id, updated_at) SELECT g.tenant_id, g.updated_at FROM gpu_quotas g "
        "WHERE g.tenant_id NOT IN (SELECT tenant_id FROM quotas)"
    )
    op.execute(
        "UPDATE quotas SET nominal_gpus = (SELECT g.nominal_gpus FROM gpu_quotas g "
        "WHERE g.tenant_id = quotas.tenant_id)"
    )
    op.drop_table("gpu_quotas")


def downgrade() -> None:
    op.create_table(
        "gpu_quotas",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("nominal_gpus", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "INSERT INTO gpu_quotas (tenant_id, nominal_gpus, updated_at) SELECT tenant_id, nominal_gpus, "
        "updated_at FROM quotas WHERE nominal_gpus IS NOT NULL"
    )
    with op.batch_alter_table("quotas") as batch:
        batch.drop_column("nominal_gpus")
        for column in _INTEGERS:
            batch.alter_column(column, type_=sa.Integer, existing_type=sa.BigInteger)
