"""Alembic environment: runs on the engine ``actors.db.migrate`` passes in (no alembic.ini)."""

from __future__ import annotations

from alembic import context

from actors.db import load_tables

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=load_tables(),
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
