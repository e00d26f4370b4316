"""One service alone (`taktline serve <name>`), as a container starts it.

Production settings are required, never defaulted: a database URL, an AMQP URL and an
auth secret or JWKS URL. Migrations run only when asked (Kubernetes runs
`taktline migrate <name>` in an initContainer before the service starts).
"""

from __future__ import annotations

from fastapi import FastAPI

from services import registry, transports
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings


class MissingSetting(ValueError):
    pass


def check_settings(name: str, settings: Settings) -> None:
    """Raise MissingSetting naming the first environment variable a lone service lacks."""
    if not settings.amqp_url:
        raise MissingSetting("TAKTLINE_AMQP_URL is required (amqp://user:pass@host:5672/vhost)")
    if not (getattr(settings, f"{name}_database_url", None) or settings.database_url):
        raise MissingSetting(f"TAKTLINE_DATABASE_URL (or TAKTLINE_{name.upper()}_DATABASE_URL) is required")
    if not (settings.auth_secret or settings.auth_jwks_url):
        raise MissingSetting("TAKTLINE_AUTH_SECRET or TAKTLINE_AUTH_JWKS_URL is required "
                             "(a service never starts with a default secret)")


def create_app(name: str, settings: Settings, *, migrate: bool = False) -> FastAPI:
    check_settings(name, settings)
    transport = transports.rabbitmq(settings)
    runtime = ServiceRuntime(registry.load_spec(name), settings, transport)
    return build_app([runtime], settings, transport, title=f"Taktline {name}", migrate=migrate)
