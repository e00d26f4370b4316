"""The process service's routes."""

from fastapi import APIRouter

from services.process.api import machines, parts, processes, programs, settings, tools


def routers() -> list[APIRouter]:
    return [processes.router, machines.router, programs.router, tools.assemblies, tools.router, parts.router,
            settings.router]
