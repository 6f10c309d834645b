"""The GPU broker: workloads, their decision events, tenants' nominal GPU quotas."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gpu_workloads",
        sa.Column("workload_id", sa.String(128), primary_key=True),
        sa.Column("tenant_id", sa.String(63)),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(16), nullable=False),
        sa.Column("label", sa.String(200)),
        sa.Column("gpus", sa.Float, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("preemptions", sa.Integer, nullable=False),
        sa.Column("checkpoint_dir", sa.String(1024)),
        sa.Column("checkpoint_step", sa.Integer),
        sa.Column("checkpoint_path", sa.String(1024)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admitted_at", sa.DateTime(timezone=True)),
        sa.Column("preempted_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_gpu_workloads_tenant_id", "gpu_workloads", ["tenant_id"])
    op.create_index("ix_gpu_workloads_state", "gpu_workloads", ["state"])
    op.create_table(
        "gpu_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workload_id", sa.String(128), sa.ForeignKey("gpu_workloads.workload_id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_gpu_events_workload_id", "gpu_events", ["workload_id", "event_id"])
    op.create_table(
        "gpu_quotas",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("nominal_gpus", sa.Float, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("gpu_quotas")
    op.drop_index("ix_gpu_events_workload_id", "gpu_events")
    op.drop_table("gpu_events")
    op.drop_index("ix_gpu_workloads_state", "gpu_workloads")
    op.drop_index("ix_gpu_workloads_tenant_id", "gpu_workloads")
    op.drop_table("gpu_workloads")
