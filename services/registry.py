"""The services this build contains: adding one is one line in `SPECS`.

Each entry names the module whose `spec()` describes the service. Modules are imported
only when a service is actually built, so `taktline token` or `--help` never pays for (or
depends on) importing every service.
"""

from __future__ import annotations

import importlib

from shared.runtime import ServiceSpec
from shared.settings import SERVICES

SPECS: dict[str, str] = {
    "process": "services.process.app",
    "maintenance": "services.maintenance.app",
    "collector": "services.collector.app",
}


class NotAvailable(LookupError):
    """A service of the design that this build does not contain yet."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the {name} service is not available yet (it arrives with its own issue); "
                         f"available: {', '.join(available())}")
        self.name = name


def available() -> list[str]:
    """Names of the services this build can run, in start order."""
    return [name for name in SERVICES if name in SPECS]


def check(name: str) -> None:
    """Raise NotAvailable (or KeyError for a name that is no service at all)."""
    if name not in SERVICES:
        raise KeyError(name)
    if name not in SPECS:
        raise NotAvailable(name)


def load_spec(name: str) -> ServiceSpec:
    check(name)
    spec: ServiceSpec = importlib.import_module(SPECS[name]).spec()
    return spec
