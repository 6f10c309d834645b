"""Fine-tuning jobs and their events."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fine_tune_jobs",
        sa.Column("job_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False, index=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("suffix", sa.String(64), nullable=False),
        sa.Column("training_file", sa.String(64), nullable=False),
        sa.Column("validation_file", sa.String(64)),
        sa.Column("hyperparameters", sa.JSON, nullable=False),
        sa.Column("seed", sa.Integer, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("error", sa.JSON),
        sa.Column("fine_tuned_model", sa.String(300)),
        sa.Column("version", sa.Integer),
        sa.Column("metrics", sa.JSON),
        sa.Column("trained_tokens", sa.Integer),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "fine_tune_events",
        sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(64), sa.ForeignKey("fine_tune_jobs.job_id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON),
    )
    op.create_index("ix_fine_tune_events_job_id", "fine_tune_events", ["job_id", "event_id"])


def downgrade() -> None:
    op.drop_index("ix_fine_tune_events_job_id", "fine_tune_events")
    op.drop_table("fine_tune_events")
    op.drop_table("fine_tune_jobs")
