"""/api/maintenance/items/import: the `.xltx` template and the bulk upload (registered before
the items router, so `/import` is never read as an `/{item_id}`)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from services.maintenance import repository
from services.maintenance.api.deps import IdFilter, UowDep
from services.maintenance.schemas import ItemRead
from services.maintenance.usecases import context, importer
from shared.auth import Editor, Reader
from shared.errors import NotFound, problem_responses

router = APIRouter(prefix="/api/maintenance/items", tags=["maintenance items"])


@router.get("/import", response_class=Response, responses={
    200: {"description": "the import template", "content": {importer.XLTX: {}}}, **problem_responses(401, 403)})
async def import_template(_: Reader) -> Response:
    body = await run_in_threadpool(importer.build_template)
    return Response(body, media_type=importer.XLTX, headers={
        "Content-Disposition": f'attachment; filename="{importer.TEMPLATE_FILENAME}"'})


async def _read_body(request: Request) -> bytes:
    """The body, refused (422) as soon as it grows past the limit: memory stays bounded."""
    limit = importer.MAX_BODY
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise importer.WorkbookInvalid(f"the file is larger than {limit // (1024 * 1024)} MB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise importer.WorkbookInvalid(f"the file is larger than {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/import", status_code=201, responses=problem_responses(400, 401, 403, 404, 422), openapi_extra={
    "requestBody": {"required": True, "content": {
        importer.XLTX: {"schema": {"type": "string", "format": "binary"}},
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}},
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def import_items(_: Editor, uow: UowDep, request: Request, machine: IdFilter = None) -> dict[str, ItemRead]:
    if machine is not None and await repository.get_known_machine(uow.session, machine) is None:
        raise NotFound("machine", machine)
    body = await _read_body(request)
    zone = await context.shop_zone(uow.session)
    parsed = await run_in_threadpool(importer.parse_workbook, body, zone, machine)
    return await importer.import_items(uow, parsed)
