"""What every service app has: health, readiness, metrics, request ids, per-slice OpenAPI, 400s."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.process.app import spec
from shared.logs import JsonFormatter, configure_logging
from shared.runtime import ServiceRuntime, build_app
from shared.settings import Settings
from shared.transport.memory import MemoryTransport

SECRET = "s" * 40


@pytest.fixture
async def app_client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, MemoryTransport]]:
    settings = Settings(data_dir=tmp_path, auth_secret=SECRET, _env_file=None)  # type: ignore[call-arg]
    transport = MemoryTransport()
    app = build_app([ServiceRuntime(spec(), settings, transport)], settings, transport)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            client.headers["Authorization"] = "Bearer " + app.state.authenticator.mint("u", ["auditor"])
            yield client, transport


async def test_healthz_and_readyz(app_client: tuple[httpx.AsyncClient, MemoryTransport]) -> None:
    client, transport = app_client
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database:process": True, "broker": True}
    await transport.close()  # the broker goes away
    not_ready = await client.get("/readyz")
    assert not_ready.status_code == 503 and not_ready.json()["checks"]["broker"] is False
    assert (await client.get("/healthz")).status_code == 200  # alive, just not ready


async def test_metrics_count_requests_by_route(app_client: tuple[httpx.AsyncClient, MemoryTransport]) -> None:
    client, _ = app_client
    await client.get("/api/processes/")
    await client.get("/api/processes/12345")
    text = (await client.get("/metrics")).text
    assert 'taktline_http_requests_total{method="GET",route="/api/processes/{process_id}",status="404"}' in text
    assert 'route="/api/processes/",status="200"' in text


async def test_request_id_is_echoed_or_made(app_client: tuple[httpx.AsyncClient, MemoryTransport]) -> None:
    client, _ = app_client
    assert (await client.get("/healthz", headers={"X-Request-ID": "abc-123"})).headers["x-request-id"] == "abc-123"
    made = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    assert all(len(i) == 32 for i in made) and len(set(made)) == 3  # one per request


async def test_each_slice_has_its_own_openapi(app_client: tuple[httpx.AsyncClient, MemoryTransport]) -> None:
    client, _ = app_client
    document = (await client.get("/api/process/openapi.json")).json()
    assert "/api/processes/{from_id}/changeover/{to_id}" in document["paths"]
    assert "/api/machines/" in document["paths"]
    assert all(path.startswith("/api/") for path in document["paths"])


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("PUT", "/api/processes/", {"name": "x"}, "machine_id"),
        ("PUT", "/api/processes/", {"machine_id": "one", "name": "x"}, "machine_id"),
        ("GET", "/api/processes/?programs=yes", None, "programs"),
        ("POST", "/api/processes/averageCycleTimes", {"not": "a list"}, "body"),
        ("GET", "/api/parts/?limit=0", None, "limit"),
    ],
)
async def test_bad_input_is_400_problem_naming_the_field(
    app_client: tuple[httpx.AsyncClient, MemoryTransport], method: str, url: str, body: object, field: str
) -> None:
    client, _ = app_client
    client.headers["Authorization"] = "Bearer " + client._transport.app.state.authenticator.mint(  # type: ignore[attr-defined]
        "p", ["planner"])
    response = await client.request(method, url, json=body)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["field"] == field and field in response.json()["detail"]


async def test_malformed_json_is_400_not_500(app_client: tuple[httpx.AsyncClient, MemoryTransport]) -> None:
    client, _ = app_client
    client.headers["Authorization"] = "Bearer " + client._transport.app.state.authenticator.mint(  # type: ignore[attr-defined]
        "p", ["planner"])
    response = await client.put("/api/processes/", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_json_logs_carry_request_and_event_ids() -> None:
    from shared.logs import event_id_var, request_id_var

    configure_logging("INFO", "json")
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler.formatter, JsonFormatter)
    record = logging.LogRecord("taktline.test", logging.INFO, __file__, 1, "hello %s", ("shop",), None)
    token_r, token_e = request_id_var.set("req-1"), event_id_var.set("evt-9")
    try:
        for flt in handler.filters:
            flt.filter(record)  # type: ignore[union-attr]
        line = json.loads(handler.format(record))
    finally:
        request_id_var.reset(token_r)
        event_id_var.reset(token_e)
    assert line["msg"] == "hello shop" and line["request_id"] == "req-1" and line["event_id"] == "evt-9"


async def test_a_server_process_freezes_startup_objects_and_collects_young_garbage_less_often(
        tmp_path: Path) -> None:
    import gc

    from shared.runtime import GC_YOUNG_THRESHOLD

    settings = Settings(data_dir=tmp_path, auth_secret=SECRET, _env_file=None)  # type: ignore[call-arg]
    transport = MemoryTransport()
    app = build_app([ServiceRuntime(spec(), settings, transport)], settings, transport)
    app.state.freeze_gc = True  # what `taktline serve` sets
    before = gc.get_threshold()
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
            assert GC_YOUNG_THRESHOLD > before[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
