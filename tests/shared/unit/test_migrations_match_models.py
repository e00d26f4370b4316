"""Each service's Alembic history builds exactly the schema its models declare."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services import registry
from shared.db import make_engine
from shared.migrations import upgrade


@pytest.mark.parametrize("service", registry.available())
async def test_migrations_leave_nothing_for_autogenerate(service: str, tmp_path: Path) -> None:
    spec = registry.load_spec(service)
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        await upgrade(engine, spec.migrations)
        async with engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), spec.metadata))
    finally:
        await engine.dispose()
    assert diff == [], f"{service}: models and migrations differ; add a revision: {diff}"
