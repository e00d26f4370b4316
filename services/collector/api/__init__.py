"""The collector's routes."""

from fastapi import APIRouter

from services.collector.api import alarms, machines, sources


def routers() -> list[APIRouter]:
    return [sources.router, machines.router, alarms.router]
