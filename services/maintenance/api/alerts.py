"""/api/alerts: due, warning and threshold alerts; dismissing one."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from services.maintenance.api.deps import IdList, Limit, NowDep, Offset, SessionDep, UowDep
from services.maintenance.schemas_support import AlertRead
from services.maintenance.usecases import alerts
from shared.auth import Operator, Reader
from shared.errors import problem_responses

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
Kinds = Annotated[list[Literal["due", "warning", "threshold"]], Query()]


@router.get("/", responses=problem_responses(400, 401, 403))
async def list_alerts(_: Reader, session: SessionDep, item_id: IdList = [], kind: Kinds = [],  # noqa: B006
                      dismissed: bool | None = None, limit: Limit = None, offset: Offset = 0) -> dict[str, AlertRead]:
    return await alerts.list_alerts(session, item_ids=item_id, kinds=kind, dismissed=dismissed,
                                    limit=limit, offset=offset)


@router.get("/{alert_id}", responses=problem_responses(401, 403, 404))
async def get_alert(_: Reader, session: SessionDep, alert_id: int) -> AlertRead:
    return await alerts.get_alert(session, alert_id)


@router.post("/{alert_id}/dismiss", responses=problem_responses(401, 403, 404))
async def dismiss_alert(who: Operator, uow: UowDep, now: NowDep, alert_id: int) -> AlertRead:
    return await alerts.dismiss_alert(uow, alert_id, user=who.subject, now=now)
