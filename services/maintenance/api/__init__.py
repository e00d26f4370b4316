"""The maintenance service's routes."""

from fastapi import APIRouter

from services.maintenance.api import alerts, entries, importer, items, resources


def routers() -> list[APIRouter]:
    # importer first: its /import must not be shadowed by the items router's /{item_id}.
    return [importer.router, items.router, entries.router, resources.equipment, resources.inventory, resources.channels,
            resources.deliveries, alerts.router]
