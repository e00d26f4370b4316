"""/api/maintenance/equipment, /api/maintenance/inventory, /api/notifications/channels: plain CRUD.

One factory builds the five routes of each, so the three stay identical in shape.
(No `from __future__ import annotations` here: FastAPI reads the closures' annotations.)
"""

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel

from services.maintenance.api.deps import Limit, Offset, SessionDep, UowDep
from services.maintenance.schemas_support import (
    ChannelCreate,
    ChannelRead,
    ChannelUpdate,
    DeliveryRead,
    EquipmentCreate,
    EquipmentRead,
    EquipmentUpdate,
    InventoryCreate,
    InventoryRead,
    InventoryUpdate,
)
from services.maintenance.usecases import resources as uc
from shared.auth import Editor, Reader
from shared.errors import problem_responses


def crud(prefix: str, tag: str, read: type[BaseModel], create: type[BaseModel], update: type[BaseModel],
         ops: dict[str, Callable[..., Awaitable[Any]]]) -> APIRouter:
    router = APIRouter(prefix=prefix, tags=[tag])

    @router.get("/", responses=problem_responses(401, 403), response_model=dict[str, read])  # type: ignore[valid-type]
    async def list_all(_: Reader, session: SessionDep) -> Any:
        return await ops["list"](session)

    @router.put("/", status_code=201, responses=problem_responses(400, 401, 403), response_model=read)
    async def create_one(_: Editor, uow: UowDep, body: create) -> Any:  # type: ignore[valid-type]
        return await ops["create"](uow, body)

    @router.get("/{id}", responses=problem_responses(401, 403, 404), response_model=read)
    async def get_one(_: Reader, session: SessionDep, id: int) -> Any:
        return await ops["get"](session, id)

    @router.patch("/{id}", responses=problem_responses(400, 401, 403, 404), response_model=read)
    async def update_one(_: Editor, uow: UowDep, id: int, body: update) -> Any:  # type: ignore[valid-type]
        return await ops["update"](uow, id, body)

    @router.delete("/{id}", status_code=204, responses=problem_responses(401, 403, 404, 409))
    async def delete_one(_: Editor, uow: UowDep, id: int) -> Response:
        await ops["delete"](uow, id)
        return Response(status_code=204)

    return router


equipment = crud("/api/maintenance/equipment", "equipment", EquipmentRead, EquipmentCreate, EquipmentUpdate, {
    "list": uc.list_equipment, "create": uc.create_equipment, "get": uc.get_equipment,
    "update": uc.update_equipment, "delete": uc.delete_equipment})
inventory = crud("/api/maintenance/inventory", "inventory", InventoryRead, InventoryCreate, InventoryUpdate, {
    "list": uc.list_inventory, "create": uc.create_inventory, "get": uc.get_inventory,
    "update": uc.update_inventory, "delete": uc.delete_inventory})
channels = crud("/api/notifications/channels", "notification channels", ChannelRead, ChannelCreate, ChannelUpdate, {
    "list": uc.list_channels, "create": uc.create_channel, "get": uc.get_channel,
    "update": uc.update_channel, "delete": uc.delete_channel})
deliveries = APIRouter(prefix="/api/notifications/deliveries", tags=["notification channels"])


@deliveries.get("/", responses=problem_responses(400, 401, 403))
async def list_deliveries(_: Reader, session: SessionDep, status: list[str] | None = None, limit: Limit = None,
                          offset: Offset = 0) -> dict[str, DeliveryRead]:
    """The notification queue: pending, sent and failed deliveries (failures keep their last error)."""
    return await uc.list_deliveries(session, status=status or [], limit=limit, offset=offset)
