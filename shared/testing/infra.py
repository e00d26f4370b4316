"""Finding real PostgreSQL and RabbitMQ for tests.

Order: the environment (TAKTLINE_TEST_DATABASE_URL, TAKTLINE_TEST_AMQP_URL), then
testcontainers when a Docker engine answers (started lazily, once per process), then the
services on their default local ports. Each finder returns (url, reason); the url is None
when nothing was found and the reason says what was tried, for the skip message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
from typing import Any
from urllib.parse import urlsplit

LOCAL_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
LOCAL_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
POSTGRES_IMAGE = "postgres:16-alpine"
RABBITMQ_IMAGE = "rabbitmq:3.13-management"

_found: dict[str, tuple[str | None, str]] = {}
_containers: list[Any] = []


def find_database_url() -> tuple[str | None, str]:
    if "database" not in _found:
        _found["database"] = _find(
            "TAKTLINE_TEST_DATABASE_URL", _start_postgres_container, LOCAL_DATABASE_URL, _postgres_answers
        )
    return _found["database"]


def find_amqp_url() -> tuple[str | None, str]:
    if "amqp" not in _found:
        _found["amqp"] = _find("TAKTLINE_TEST_AMQP_URL", _start_rabbitmq_container, LOCAL_AMQP_URL, _port_answers)
    return _found["amqp"]


def found(kind: str) -> tuple[str | None, str]:
    """What an earlier finder call found ("database" or "amqp"), without looking again."""
    return _found.get(kind, (None, "not looked for"))


def stop_containers() -> None:
    """Stop what testcontainers started (session teardown); finders start afresh after."""
    while _containers:
        container = _containers.pop()
        try:
            container.stop()
        except Exception:  # teardown must not mask the test outcome
            pass
    _found.clear()


def _find(env: str, start_container: Any, local_url: str, answers: Any) -> tuple[str | None, str]:
    if url := os.environ.get(env):
        return url, f"from {env}"
    tried = [f"{env} not set"]
    if _docker_available():
        try:
            return start_container(), "testcontainers"
        except Exception as exc:  # image pull, port, daemon trouble: fall through to local
            tried.append(f"testcontainers failed ({exc.__class__.__name__}: {exc})")
    else:
        tried.append("no Docker engine")
    if answers(local_url):
        return local_url, f"local service at {_where(local_url)}"
    tried.append(f"nothing at {_where(local_url)}")
    return None, "; ".join(tried)


def _docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _start_postgres_container() -> str:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.13
        from testcontainers.postgres import PostgresContainer  # type: ignore[no-redef]

    container = PostgresContainer(POSTGRES_IMAGE, driver=None).start()
    _containers.append(container)
    return str(container.get_connection_url())


def _start_rabbitmq_container() -> str:
    try:
        from testcontainers.community.rabbitmq import RabbitMqContainer
    except ImportError:  # testcontainers < 4.13
        from testcontainers.rabbitmq import RabbitMqContainer  # type: ignore[no-redef]

    container = RabbitMqContainer(RABBITMQ_IMAGE).start()
    _containers.append(container)
    host, port = container.get_container_host_ip(), container.get_exposed_port(container.port)
    return f"amqp://{container.username}:{container.password}@{host}:{port}/"


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def _port_answers(url: str, timeout: float = 0.5) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=timeout):
            return True
    except OSError:
        return False


def _postgres_answers(url: str) -> bool:
    if not _port_answers(url):
        return False

    async def connect() -> None:
        import asyncpg

        connection = await asyncpg.connect(url, timeout=3)
        await connection.close()

    # A thread of its own: callers may or may not be inside a running event loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(asyncio.run, connect()).result(timeout=10)
            return True
        except Exception:
            return False
