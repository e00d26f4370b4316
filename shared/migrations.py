"""Run a service's Alembic history programmatically (`taktline migrate`, startup, tests)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine


def _config(script_location: Path, connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(engine: AsyncEngine, script_location: Path, schema: str | None = None) -> None:
    """Bring the database to head. On PostgreSQL: in the service's schema, one migrator at a time."""
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            key = zlib.crc32(f"taktline.migrate.{schema}".encode())
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            if schema:
                await conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                await conn.exec_driver_sql(f'SET LOCAL search_path TO "{schema}"')
        await conn.run_sync(lambda sync: command.upgrade(_config(script_location, sync), "head"))


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py: online mode over a given connection."""
    connection: Any = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `taktline migrate`, which supplies the connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
