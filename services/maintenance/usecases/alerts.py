"""Alerts (in-app) and the notifications that go with them (delivery rows the notifier sends)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.models import Alert, Channel, Delivery, Item
from services.maintenance.schemas_support import AlertRead
from shared.db import to_unix
from shared.uow import UnitOfWork


def to_read(alert: Alert) -> AlertRead:
    return AlertRead(id=alert.id, item_id=alert.item_id, machine_id=alert.machine_id, kind=alert.kind,
                     message=alert.message, created=alert.created_at.timestamp(), dismissed=alert.dismissed,
                     dismissed_at=to_unix(alert.dismissed_at), dismissed_by=alert.dismissed_by)


async def raise_alert(uow: UnitOfWork, item: Item, *, kind: str, message: str, now: datetime,
                      machine_id: int | None, channel_id: int | None, extra: dict[str, Any] | None = None) -> Alert:
    """One alert, and one queued delivery when the item names a channel (same transaction)."""
    alert = Alert(item_id=item.id, machine_id=machine_id, kind=kind, message=message, created_at=now)
    uow.session.add(alert)
    if channel_id is not None and await repository.existing_ids(uow.session, Channel, [channel_id]):
        payload = {"kind": kind, "item_id": item.id, "item_name": item.name, "machine_id": machine_id,
                   "message": message, "time": now.timestamp(), **(extra or {})}
        uow.session.add(Delivery(channel_id=channel_id, payload=payload, status="pending", attempts=0,
                                 next_attempt_at=now, created_at=now))
    await uow.flush()
    return alert




async def list_alerts(session: AsyncSession, *, item_ids: list[int], kinds: list[str], dismissed: bool | None,
                      limit: int | None, offset: int) -> dict[str, AlertRead]:
    alerts = await repository.list_alerts(session, item_ids=item_ids, kinds=kinds, dismissed=dismissed,
                                          limit=limit, offset=offset)
    return {str(a.id): to_read(a) for a in alerts}


async def get_alert(session: AsyncSession, alert_id: int) -> AlertRead:
    return to_read(await repository.get_alert_or_404(session, alert_id))


async def dismiss_alert(uow: UnitOfWork, alert_id: int, *, user: str, now: datetime) -> AlertRead:
    alert = await repository.get_alert_or_404(uow.session, alert_id)
    if not alert.dismissed:  # dismissing twice keeps the first dismissal
        alert.dismissed, alert.dismissed_at, alert.dismissed_by = True, now, user
        await uow.flush()
    return to_read(alert)
