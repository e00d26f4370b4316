"""/api/maintenance/items/import: the .xltx template, the upload round trip, every error at
once, all-or-nothing, hostile uploads (garbage, zip bomb, oversized sheet) and roles."""

from __future__ import annotations

import io
import re
import time
import zipfile
from collections.abc import Callable
from typing import Any

import openpyxl
import pytest

from services.maintenance.usecases import importer
from tests.maintenance.conftest import MaintenanceHarness

IMPORT = "/api/maintenance/items/import"
ITEMS = "/api/maintenance/items/"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def template(api: MaintenanceHarness, role: str = "admin") -> bytes:
    response = await api.call("GET", IMPORT, role=role)
    assert response.status_code == 200, response.text
    return response.content


def fill(template_bytes: bytes, rows: list[dict[str, Any]], as_xlsx: bool = False) -> bytes:
    """Fill the template's Items sheet the way a user would: by header name, then save
    (as a template again, or as an ordinary .xlsx)."""
    wb = openpyxl.load_workbook(io.BytesIO(template_bytes))
    wb.template = not as_xlsx
    ws = wb["Items"]
    header = [c.value for c in ws[1]]
    for offset, row in enumerate(rows, start=2):
        for field, value in row.items():
            ws.cell(row=offset, column=header.index(field) + 1, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def rewrite(workbook: bytes, part: str, change: Callable[[bytes], bytes]) -> bytes:
    """The workbook with one zip member changed (to forge what openpyxl would never write)."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info.filename, change(data) if info.filename == part else data)
    return out.getvalue()


async def upload(api: MaintenanceHarness, body: bytes, status: int, role: str = "admin",
                 query: str = "") -> Any:
    response = await api.client.post(IMPORT + query, content=body,
                                     headers={**api.auth(role), "Content-Type": XLSX})
    assert response.status_code == status, response.text
    return response.json()


class TestTemplate:
    async def test_is_a_real_xltx_with_dropdowns_and_instructions(self, api: MaintenanceHarness) -> None:
        response = await api.call("GET", IMPORT)
        assert response.status_code == 200
        assert response.headers["content-type"] == importer.XLTX
        assert 'filename="maintenance-items-template.xltx"' in response.headers["content-disposition"]
        wb = openpyxl.load_workbook(io.BytesIO(response.content))
        assert wb.template is True
        assert wb.sheetnames == ["Items", "Instructions"]
        header = [c.value for c in wb["Items"][1]]
        assert header == [c.field for c in importer.COLUMNS]
        assert {"item_type", "name", "frequency", "indices", "months", "weekdays", "time_of_day",
                "inventory_items", "unit", "threshold_upper"} <= set(header)
        lists = {str(dv.sqref).split(":")[0]: dv.formula1 for dv in wb["Items"].data_validations.dataValidation}
        letter = {field: openpyxl.utils.get_column_letter(header.index(field) + 1) for field in header}
        assert lists[f"{letter['item_type']}2"] == '"task,measurement"'
        assert lists[f"{letter['schedule_mode']}2"] == '"0,1,2"'
        assert lists[f"{letter['frequency']}2"] == '"Y,M,W,D,H"'
        assert lists[f"{letter['difficulty']}2"] == '"1,2,3,4"'
        for boolean in ("is_critical", "needed_when_archived", "needed_when_not_archived"):
            assert lists[f"{letter[boolean]}2"] == '"TRUE,FALSE"'
        instructions = "\n".join(str(c.value) for row in wb["Instructions"].iter_rows() for c in row if c.value)
        for needle in ("hours", "minutes", "bitfield", "HH:MM", "1, 14", "id:quantity"):
            assert needle in instructions, needle
        assert all(field in instructions for field in header)

    @pytest.mark.parametrize("role", ["planner", "shop", "auditor", "machine"])
    async def test_every_role_may_download_it(self, api: MaintenanceHarness, role: str) -> None:
        assert (await template(api, role))[:2] == b"PK"

    async def test_xml_is_parsed_with_defusedxml(self) -> None:
        assert openpyxl.DEFUSEDXML is True


class TestRoundTrip:
    async def test_filled_template_creates_the_items(self, api: MaintenanceHarness) -> None:
        await api.known_machine(4)
        body = fill(await template(api), [
            {"item_type": "task", "name": "Grease ways", "machine_id": 4, "schedule_mode": 2, "frequency": "M",
             "indices": "1, 14", "months": 585, "weekdays": 15, "time_of_day": "07:30", "is_critical": True,
             "difficulty": 3, "timer_interval": 8, "completion_duration": 15,
             "trigger_alarms": "SPINDLE OVERLOAD\nLOW LUBE"},
            {"item_type": "measurement", "name": "Coolant", "unit": "%", "threshold_lower": 5,
             "threshold_upper": 9, "needed_when_not_archived": False, "indices": -2},
        ])
        created = await upload(api, body, 201)
        assert len(created) == 2
        listed = await api.ok("GET", ITEMS)
        assert listed == created
        grease, coolant = sorted(listed.values(), key=lambda i: i["id"])
        assert grease | {"id": 0} == {
            "id": 0, "item_type": "task", "name": "Grease ways", "instructions": "", "machine_id": 4,
            "equipment_id": None, "process_id": None, "schedule_mode": 2, "timer_interval": 8.0,
            "warning_interval": 0.0, "cycle_timer": 0.0, "frequency": "M", "interval": 1, "indices": [1, 14],
            "months": 585, "weekdays": 15, "time_of_day": "07:30", "initial_entry": None, "is_critical": True,
            "needed_when_archived": False, "needed_when_not_archived": True, "remind_channel_id": None,
            "difficulty": 3, "completion_duration": 15.0, "inventory_items": {},
            "trigger_alarms": ["SPINDLE OVERLOAD", "LOW LUBE"], "trigger_alarm_id": None,
        }
        assert (coolant["item_type"], coolant["unit"], coolant["threshold_lower"], coolant["threshold_upper"],
                coolant["indices"], coolant["needed_when_not_archived"]) == ("measurement", "%", 5, 9, [-2], False)

    async def test_references_and_cell_types_an_excel_user_produces(self, api: MaintenanceHarness) -> None:
        from datetime import datetime
        from datetime import time as clock

        inventory = await api.ok("PUT", "/api/maintenance/inventory/", 201, json={"name": "Grease", "quantity": 5})
        body = fill(await template(api), [{
            "item_type": "task", "name": "Lube", "time_of_day": clock(6, 15), "difficulty": "4",
            "initial_entry": datetime(2026, 1, 2, 3, 4), "inventory_items": f"{inventory['id']}:2",
            "is_critical": "FALSE",
        }])
        [item] = (await upload(api, body, 201)).values()
        assert (item["time_of_day"], item["difficulty"], item["is_critical"]) == ("06:15", 4, False)
        assert item["initial_entry"] == datetime(2026, 1, 2, 3, 4).replace(
            tzinfo=__import__("zoneinfo").ZoneInfo("UTC")).timestamp()
        assert item["inventory_items"] == {str(inventory["id"]): 2}


class TestMachine:
    async def test_machine_query_assigns_every_item(self, api: MaintenanceHarness) -> None:
        await api.known_machine(7)
        body = fill(await template(api), [{"item_type": "task", "name": "A"}, {"item_type": "task", "name": "B"}],
                    as_xlsx=True)
        assert not openpyxl.load_workbook(io.BytesIO(body)).template
        created = await upload(api, body, 201, query="?machine=7")
        assert {i["machine_id"] for i in created.values()} == {7}
        assert set(await api.ok("GET", ITEMS + "?machine_id=7")) == set(created)

    async def test_unknown_machine_is_404(self, api: MaintenanceHarness) -> None:
        body = fill(await template(api), [{"item_type": "task", "name": "A"}])
        problem = await upload(api, body, 404, query="?machine=99")
        assert "99" in problem["detail"]
        assert await api.ok("GET", ITEMS) == {}

    async def test_rows_naming_another_machine_or_equipment_conflict(self, api: MaintenanceHarness) -> None:
        await api.known_machine(7)
        equipment = await api.ok("PUT", "/api/maintenance/equipment/", 201, json={"name": "Chiller"})
        body = fill(await template(api), [{"item_type": "task", "name": "A", "machine_id": 8},
                                          {"item_type": "task", "name": "B", "machine_id": 7},
                                          {"item_type": "task", "name": "C", "equipment_id": equipment["id"]}])
        problem = await upload(api, body, 422, query="?machine=7")
        assert [(e["row"], e["column"]) for e in problem["errors"]] == [(2, "machine_id"), (4, "equipment_id")]
        assert await api.ok("GET", ITEMS) == {}


class TestInvalidRows:
    async def test_every_error_is_reported_at_once_and_nothing_is_created(self, api: MaintenanceHarness) -> None:
        body = fill(await template(api), [
            {"item_type": "task", "name": "fine"},
            {"item_type": "inspection", "name": "bad type", "frequency": "Q"},
            {"item_type": "task", "difficulty": 5, "indices": "1, x"},
            {"item_type": "task", "name": "both", "machine_id": 3, "equipment_id": 4},
            {"item_type": "task", "name": "refs", "remind_channel_id": 12, "inventory_items": "5:1"},
            {"item_type": "task", "name": "task with unit", "unit": "mm", "time_of_day": "25:00",
             "is_critical": "maybe"},
        ])
        response = await api.client.post(IMPORT, content=body, headers=api.auth("admin"))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        errors = {(e["row"], e["column"]) for e in response.json()["errors"]}
        assert errors == {(3, "item_type"), (3, "frequency"), (4, "name"), (4, "difficulty"), (4, "indices"),
                          (5, "equipment_id"), (6, "remind_channel_id"), (6, "inventory_items"),
                          (7, "unit"), (7, "time_of_day"), (7, "is_critical")}
        assert all(e["message"] and e["cell"] for e in response.json()["errors"])
        assert await api.ok("GET", ITEMS) == {}

    async def test_references_are_checked_for_every_row(self, api: MaintenanceHarness) -> None:
        body = fill(await template(api), [
            {"item_type": "task", "name": "fine"},
            {"item_type": "task", "name": "both", "machine_id": 3, "equipment_id": 4},
            {"item_type": "task", "name": "refs", "remind_channel_id": 12, "inventory_items": "5:1",
             "process_id": 9},
            {"item_type": "task", "name": "task with unit", "unit": "mm", "time_of_day": "25:00"},
        ])
        problem = await upload(api, body, 422)
        found = {(e["row"], e["column"]): e for e in problem["errors"]}
        # cross-field checks are reported next to a bad field in the same row; references of
        # the valid rows are checked too
        assert set(found) == {(3, "equipment_id"), (4, "remind_channel_id"), (4, "inventory_items"),
                              (4, "process_id"), (5, "unit"), (5, "time_of_day")}
        body = fill(await template(api), [
            {"item_type": "task", "name": "fine"},
            {"item_type": "task", "name": "refs", "remind_channel_id": 12, "inventory_items": "5:1",
             "process_id": 9, "equipment_id": 4},
        ])
        problem = await upload(api, body, 422)
        assert [(e["row"], e["column"], e["cell"][0]) for e in problem["errors"]] == [
            (3, "equipment_id", "E"), (3, "process_id", "F"), (3, "remind_channel_id", "U"),
            (3, "inventory_items", "X")]
        assert "there is no notification channel 12" in problem["detail"]
        assert await api.ok("GET", ITEMS) == {}

    async def test_unknown_and_missing_columns(self, api: MaintenanceHarness) -> None:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(["name", "colour"])
        ws.append(["x", "red"])
        out = io.BytesIO()
        wb.save(out)
        problem = await upload(api, out.getvalue(), 422)
        assert {(e["row"], e["column"]) for e in problem["errors"]} == {(1, "colour"), (1, "item_type")}

    async def test_header_only_is_422(self, api: MaintenanceHarness) -> None:
        problem = await upload(api, await template(api), 422)
        assert "no items" in problem["detail"]


class TestHostileUploads:
    @pytest.mark.parametrize("body", [b"", b"not a workbook at all", b"PK\x03\x04garbage" * 100])
    async def test_garbage_is_422(self, api: MaintenanceHarness, body: bytes) -> None:
        problem = await upload(api, body, 422)
        assert problem["status"] == 422 and problem["errors"]

    async def test_a_zip_that_is_not_a_workbook_is_422(self, api: MaintenanceHarness) -> None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("hello.txt", "hi")
        await upload(api, out.getvalue(), 422)

    @pytest.mark.parametrize("size", [60 * 1024 * 1024, 4 * 1024 * 1024])
    async def test_zip_bomb_is_422_fast(self, api: MaintenanceHarness, size: int) -> None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("[Content_Types].xml", "<Types/>")
            archive.writestr("xl/worksheets/sheet1.xml", b"\0" * size)
        assert len(out.getvalue()) < importer.MAX_BODY
        started = time.monotonic()
        problem = await upload(api, out.getvalue(), 422)
        assert time.monotonic() - started < 1.0
        assert "bomb" in problem["detail"] or "inflate" in problem["detail"]

    async def test_too_many_members_is_422(self, api: MaintenanceHarness) -> None:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for i in range(importer.MAX_MEMBERS + 1):
                archive.writestr(f"m{i}", "")
        await upload(api, out.getvalue(), 422)

    async def test_body_over_the_limit_is_422(self, api: MaintenanceHarness) -> None:
        problem = await upload(api, b"\0" * (importer.MAX_BODY + 1), 422)
        assert "larger than" in problem["detail"]

    async def test_too_many_rows_is_422(self, api: MaintenanceHarness) -> None:
        wb = openpyxl.Workbook(write_only=True)
        ws = wb.create_sheet("Items")
        ws.append(["item_type", "name"])
        for i in range(importer.MAX_ROWS + 1):
            ws.append(["task", f"item {i}"])
        out = io.BytesIO()
        wb.save(out)
        problem = await upload(api, out.getvalue(), 422)
        assert "too many rows" in problem["detail"]
        assert await api.ok("GET", ITEMS) == {}

    async def test_a_sheet_declaring_a_huge_dimension_is_422(self, api: MaintenanceHarness) -> None:
        wb = openpyxl.Workbook()
        ws = wb.active
        ws.append(["item_type", "name"])
        ws.cell(row=1_000_000, column=1, value="task")
        ws.cell(row=1_000_000, column=2, value="far away")
        out = io.BytesIO()
        wb.save(out)
        started = time.monotonic()
        problem = await upload(api, out.getvalue(), 422)
        assert time.monotonic() - started < 2.0
        assert "rows" in problem["detail"]

    async def test_a_sheet_without_dimension_and_a_huge_gap_is_422_fast(self, api: MaintenanceHarness) -> None:
        wb = openpyxl.Workbook()
        wb.active.append(["item_type", "name"])
        wb.active.cell(row=1_000_000, column=1, value="task")
        out = io.BytesIO()
        wb.save(out)
        body = rewrite(out.getvalue(), "xl/worksheets/sheet1.xml",
                       lambda xml: re.sub(rb"<dimension[^>]*/>", b"", xml))
        started = time.monotonic()
        problem = await upload(api, body, 422)
        assert time.monotonic() - started < 2.0
        assert "rows" in problem["detail"]

    @pytest.mark.parametrize("part", ["xl/workbook.xml", "xl/worksheets/sheet1.xml"])
    async def test_xml_entities_are_refused(self, api: MaintenanceHarness, part: str) -> None:
        laughs = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>')
        body = rewrite(fill(await template(api), [{"item_type": "task", "name": "A"}]), part,
                       lambda xml: laughs + re.sub(rb"^<\?xml[^>]*\?>", b"", xml).replace(b"<v>", b"<v>&lol2;", 1)
                       if part.endswith("sheet1.xml") else laughs + re.sub(rb"^<\?xml[^>]*\?>", b"", xml))
        await upload(api, body, 422)
        assert await api.ok("GET", ITEMS) == {}

    async def test_too_many_columns_is_422(self, api: MaintenanceHarness) -> None:
        wb = openpyxl.Workbook()
        wb.active.cell(row=1, column=importer.MAX_COLUMNS + 5, value="x")
        out = io.BytesIO()
        wb.save(out)
        problem = await upload(api, out.getvalue(), 422)
        assert "columns" in problem["detail"]


class TestRoles:
    @pytest.mark.parametrize("role", ["shop", "auditor", "machine"])
    async def test_only_admins_and_planners_import(self, api: MaintenanceHarness, role: str) -> None:
        body = fill(await template(api), [{"item_type": "task", "name": "A"}])
        await upload(api, body, 403, role=role)
        assert await api.ok("GET", ITEMS) == {}

    async def test_planner_imports(self, api: MaintenanceHarness) -> None:
        body = fill(await template(api), [{"item_type": "task", "name": "A"}])
        assert len(await upload(api, body, 201, role="planner")) == 1

    async def test_no_token_is_401(self, api: MaintenanceHarness) -> None:
        assert (await api.client.get(IMPORT)).status_code == 401
        assert (await api.client.post(IMPORT, content=b"x")).status_code == 401
