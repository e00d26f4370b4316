"""Sources: where the collector reads a machine's data (agent, adapter, push, simulator).

A write drops the push sources' cache once it commits (usecases/push_sources.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from services.collector import repository
from services.collector.models import Source
from services.collector.schemas import SourceCreate, SourceRead, SourceUpdate, check_address
from services.collector.usecases.push_sources import PushSources
from services.collector.usecases.views import source_read
from shared.errors import InvalidInput
from shared.uow import UnitOfWork


def _forget_after_commit(uow: UnitOfWork, cache: PushSources | None) -> None:
    if cache is not None:
        uow.after_commit(cache.forget_all)


async def list_sources(session: AsyncSession, machine_id: int | None, kind: str | None) -> dict[str, SourceRead]:
    return {str(s.id): source_read(s) for s in await repository.list_sources(session, machine_id, kind)}


async def get_source(session: AsyncSession, source_id: int) -> SourceRead:
    return source_read(await repository.get_source_or_404(session, source_id))


async def create_source(uow: UnitOfWork, data: SourceCreate, *, cache: PushSources | None) -> SourceRead:
    _forget_after_commit(uow, cache)
    values = data.model_dump(exclude={"mapping"})
    source = Source(**values, mapping=data.mapping.model_dump(exclude_unset=True) if data.mapping else {})
    uow.session.add(source)
    await uow.flush()
    return source_read(source)


async def update_source(uow: UnitOfWork, source_id: int, changes: SourceUpdate, *,
                        cache: PushSources | None) -> SourceRead:
    _forget_after_commit(uow, cache)
    source = await repository.get_source_or_404(uow.session, source_id)
    values = changes.model_dump(exclude_unset=True, exclude={"mapping"})
    for key in ("machine_id", "kind", "enabled"):
        if key in values and values[key] is None:
            raise InvalidInput(key, "cannot be null")
    kind, address = values.get("kind", source.kind), values.get("address", source.address)
    problem = check_address(kind, address)
    if problem:
        raise InvalidInput("address", problem)
    if values.get("machine_id", source.machine_id) != source.machine_id or kind != source.kind or (
            address != source.address) or values.get("device", source.device) != source.device:
        source.position = None  # another stream: its positions mean nothing here
    for key, value in values.items():
        setattr(source, key, value)
    if "mapping" in changes.model_fields_set:
        source.mapping = changes.mapping.model_dump(exclude_unset=True) if changes.mapping else {}
    await uow.flush()
    return source_read(source)


async def delete_source(uow: UnitOfWork, source_id: int, *, cache: PushSources | None) -> None:
    _forget_after_commit(uow, cache)
    await uow.session.delete(await repository.get_source_or_404(uow.session, source_id))
