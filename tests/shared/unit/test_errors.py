"""Errors render once, as RFC 9457 problem+json, and never leak internals."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError, ProgrammingError

from shared.errors import PROBLEM, Conflict, InvalidInput, NotFound, PreconditionFailed, install_error_handlers


class Widget(BaseModel):
    name: str
    count: int


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.put("/widgets/")
    async def create(widget: Widget) -> Widget:
        return widget

    @app.get("/widgets/{widget_id}")
    async def read(widget_id: int, verbose: bool = False) -> dict[str, int]:
        raise NotFound("widget", widget_id)

    @app.post("/conflict")
    async def conflict() -> None:
        raise Conflict("processes are on different machines")

    @app.post("/precondition")
    async def precondition() -> None:
        raise PreconditionFailed("the machine has unfinished parts")

    @app.post("/invalid")
    async def invalid() -> None:
        raise InvalidInput("machine_id", "cannot be changed after creation")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("password=hunter2 in a stack nobody should see")

    @app.get("/database-restarting")
    async def restarting() -> None:
        # What SQLAlchemy raises while PostgreSQL shuts down or is not accepting connections.
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("the database system is shutting down"))

    @app.get("/bad-statement")
    async def bad_statement() -> None:
        raise ProgrammingError("SELEC 1", {}, Exception("syntax error"))

    return app


@pytest.fixture
def client() -> TestClient:
    # raise_server_exceptions=False: see what a real client gets for an unexpected error.
    return TestClient(_app(), raise_server_exceptions=False)


def _problem(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


class TestValidation:
    def test_invalid_body_field_answers_400_naming_the_field(self, client: TestClient) -> None:
        response = client.put("/widgets/", json={"name": "a", "count": "many"})
        assert response.status_code == 400
        body = _problem(response)
        assert body["field"] == "count"
        assert "count" in str(body["detail"])

    def test_missing_body_field_answers_400_naming_the_field(self, client: TestClient) -> None:
        response = client.put("/widgets/", json={"count": 1})
        assert response.status_code == 400
        assert _problem(response)["field"] == "name"

    def test_malformed_json_answers_400(self, client: TestClient) -> None:
        response = client.put("/widgets/", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 400
        _problem(response)

    def test_invalid_path_and_query_parameters_answer_400(self, client: TestClient) -> None:
        assert _problem(client.get("/widgets/abc"))["field"] == "widget_id"
        response = client.get("/widgets/1", params={"verbose": "perhaps"})
        assert response.status_code == 400
        assert _problem(response)["field"] == "verbose"


class TestDomainErrors:
    def test_not_found_answers_404(self, client: TestClient) -> None:
        response = client.get("/widgets/7")
        assert response.status_code == 404
        assert "widget 7" in str(_problem(response)["detail"])

    def test_conflict_answers_409(self, client: TestClient) -> None:
        response = client.post("/conflict")
        assert response.status_code == 409
        assert _problem(response)["status"] == 409

    def test_precondition_failed_answers_412(self, client: TestClient) -> None:
        response = client.post("/precondition")
        assert response.status_code == 412
        assert _problem(response)["detail"] == "the machine has unfinished parts"

    def test_invalid_input_answers_400_naming_the_field(self, client: TestClient) -> None:
        response = client.post("/invalid")
        assert response.status_code == 400
        assert _problem(response)["field"] == "machine_id"

    def test_unknown_route_answers_404_problem(self, client: TestClient) -> None:
        response = client.get("/nowhere")
        assert response.status_code == 404
        _problem(response)


class TestUnexpected:
    def test_unexpected_exception_answers_500_without_leaking_the_message(self, client: TestClient) -> None:
        response = client.get("/boom")
        assert response.status_code == 500
        body = _problem(response)
        assert "hunter2" not in response.text
        assert body["status"] == 500

    def test_a_database_outage_answers_503_with_retry_after(self, client: TestClient) -> None:
        response = client.get("/database-restarting")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert _problem(response)["status"] == 503
        assert "shutting down" not in response.text

    def test_a_bad_statement_is_still_a_500(self, client: TestClient) -> None:
        assert client.get("/bad-statement").status_code == 500
