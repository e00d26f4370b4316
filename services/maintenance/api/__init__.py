"""The maintenance service's routes."""

from fastapi import APIRouter

from services.maintenance.api import alerts, entries, items, resources


def routers() -> list[APIRouter]:
    return [items.router, entries.router, resources.equipment, resources.inventory, resources.channels,
            resources.deliveries, alerts.router]
