"""Adapter versions keep their lineage and metrics and can be retired; deployments are a history.

``model_deployments`` records every switch of a model's served version, so a rollback goes back
to what was served before (a stack: deploy pushes, rollback pops).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("job_id", sa.String(64)))
        batch.add_column(sa.Column("lineage", sa.JSON))
        batch.add_column(sa.Column("metrics", sa.JSON))
        batch.add_column(sa.Column("retired_at", sa.DateTime(timezone=True)))
    op.create_table(
        "model_deployments",
        sa.Column("deployment_id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(300), sa.ForeignKey("models.model"), nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("model_deployments")
    with op.batch_alter_table("model_versions") as batch:
        for column in ("retired_at", "metrics", "lineage", "job_id"):
            batch.drop_column(column)
