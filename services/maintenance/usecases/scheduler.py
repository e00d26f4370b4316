"""The scheduler: raise each warning and each due once per occurrence (alert, reminder delivery,
event), and block a critical item's machine until its entry lifts the interlock.

`scan` is one pass in one transaction; `run` repeats it. On PostgreSQL each pass first takes a
transaction-level advisory lock and skips the pass when another replica holds it, so several
replicas never raise the same occurrence twice (the per-item markers make a pass idempotent).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import text

from services.maintenance import repository
from services.maintenance.domain import schedule
from services.maintenance.models import Item
from services.maintenance.usecases import alerts, context
from shared.db import utcnow
from shared.events import InterlockChanged, ItemDue, ItemWarning
from shared.uow import UnitOfWork

if TYPE_CHECKING:
    from shared.runtime import ServiceRuntime

log = logging.getLogger("taktline.maintenance.scheduler")
LOCK_KEY = 0x7A4B_0004  # advisory lock id of the maintenance scheduler


async def _locked(uow: UnitOfWork) -> bool:
    """PostgreSQL: whether this pass may run (released when the transaction ends)."""
    if uow.session.bind.dialect.name != "postgresql":
        return True
    # Keyed by schema as well: advisory locks span the database, which several deployments
    # (schema prefixes) may share.
    got = await uow.session.execute(text("SELECT pg_try_advisory_xact_lock(:key, hashtext(current_schema()))"),
                                    {"key": LOCK_KEY})
    return bool(got.scalar())


async def _raise_due(uow: UnitOfWork, item: Item, due_at: datetime, machine_id: int | None, now: datetime) -> None:
    message = f"{item.name} is due" + (" (alarm)" if item.trigger_alarm_id is not None else "")
    await alerts.raise_alert(uow, item, kind="due", message=message, now=now, machine_id=machine_id,
                             channel_id=item.remind_channel_id, extra={"due_at": due_at.timestamp()})
    uow.emit(ItemDue(item_id=item.id, name=item.name, machine_id=machine_id, equipment_id=item.equipment_id,
                     due_at=due_at.timestamp(), is_critical=item.is_critical, trigger_alarm_id=item.trigger_alarm_id))
    if item.is_critical and machine_id is not None and not item.blocking:
        item.blocking = True
        blocking = [i.id for i in await repository.items_on_machine(uow.session, machine_id) if i.blocking]
        uow.emit(InterlockChanged(machine_id=machine_id, blocked=True, item_ids=blocking))


async def scan(uow: UnitOfWork, now: datetime) -> int:
    """One pass; returns how many warnings and dues it raised (-1: another replica holds the lock)."""
    if not await _locked(uow):
        return -1
    ctx = await context.load(uow.session)
    raised = 0
    for item in await repository.list_items(uow.session):
        found = schedule.status(ctx.spec(item), ctx.state(item), ctx.zone, now)
        if found.state not in ("due", "warning"):
            continue
        # The occurrence's identity: its due time, else (run time) the completion it counts from.
        key = found.due_at or ctx.run_time_due(item) or item.last_done or item.initial_entry or item.created_at
        machine_id = ctx.machine_of(item)
        if found.state == "due" and item.due_raised_for != key:
            await _raise_due(uow, item, found.due_at or key, machine_id, now)
            item.due_raised_for = item.warned_for = key
            raised += 1
        elif found.state == "warning" and item.warned_for != key:
            await alerts.raise_alert(uow, item, kind="warning", message=f"{item.name} is due soon", now=now,
                                     machine_id=machine_id, channel_id=item.remind_channel_id,
                                     extra={"due_at": key.timestamp()})
            uow.emit(ItemWarning(item_id=item.id, name=item.name, machine_id=machine_id,
                                 equipment_id=item.equipment_id, due_at=key.timestamp()))
            item.warned_for = key
            raised += 1
    return raised


async def run(runtime: ServiceRuntime) -> None:
    """The background job: a pass every `maintenance_scheduler_interval` seconds (the first one that long after start);
    a failing pass is logged and the next one tries again."""
    while True:
        await asyncio.sleep(runtime.settings.maintenance_scheduler_interval)
        try:
            async with runtime.uow() as uow:
                await scan(uow, utcnow())
                await uow.commit()
        except asyncio.CancelledError:
            raise
        except Exception:  # the loop must outlive one bad pass
            log.exception("scheduler pass failed")
