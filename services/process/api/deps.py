"""Dependencies of the process routes."""

from shared.api import IdFilter, NowDep, UnixTime, service_dependencies

UowDep, SessionDep = service_dependencies("process")

__all__ = ["IdFilter", "NowDep", "SessionDep", "UnixTime", "UowDep"]
