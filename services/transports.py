"""Building the event transport from settings (imported lazily: aio-pika only when needed)."""

from __future__ import annotations

from shared.settings import Settings
from shared.transport.base import Transport


def rabbitmq(settings: Settings) -> Transport:
    if not settings.amqp_url:
        raise ValueError("TAKTLINE_AMQP_URL is not set")
    from shared.transport.rabbitmq import RabbitMQTransport

    return RabbitMQTransport(
        settings.amqp_url,
        exchange=settings.exchange,
        dead_exchange=settings.dead_exchange,
        delivery_limit=settings.consumer_delivery_limit,
    )


def from_settings(settings: Settings) -> Transport:
    """RabbitMQ when an AMQP URL is configured, else the in-memory transport."""
    if settings.amqp_url:
        return rabbitmq(settings)
    from shared.transport.memory import MemoryTransport

    return MemoryTransport(delivery_limit=settings.consumer_delivery_limit)
