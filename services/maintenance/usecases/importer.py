"""Bulk import of maintenance items from a spreadsheet (openpyxl).

Pure parts (no database): `build_template()` writes the `.xltx` template, `check_archive()`
rejects a non-zip or a zip bomb before openpyxl sees it, and `parse_workbook()` turns the
filled sheet into validated `ItemCreate`s, collecting every error (row, column, reason).
The async part (`import_items`) checks references like the item use case does, for all rows
at once, and creates the items through `items.create_item` in the caller's unit of work, so
all rows are created or none.

XML safety: openpyxl parses with defusedxml when it is installed (`openpyxl.DEFUSEDXML`,
a dependency of this project), so entity expansion and external entities are refused;
`parse_workbook` refuses to run without it.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from openpyxl.worksheet.datavalidation import DataValidation
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.maintenance import repository
from services.maintenance.models import Channel, Equipment, InventoryItem, KnownMachine, KnownProcess
from services.maintenance.schemas import ItemCreate, ItemRead
from services.maintenance.usecases import items
from shared.errors import DomainError
from shared.uow import UnitOfWork

XLTX = "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
TEMPLATE_FILENAME = "maintenance-items-template.xltx"
SHEET = "Items"
INSTRUCTIONS = "Instructions"

# Limits: the request body, the zip (checked from its central directory before anything is
# inflated; zipfile never inflates a member beyond its declared size), and the sheet.
MAX_BODY = 5 * 1024 * 1024
MAX_UNCOMPRESSED = 25 * 1024 * 1024
MAX_MEMBERS = 200
MAX_RATIO = 100  # uncompressed / compressed, for members larger than RATIO_FLOOR
RATIO_FLOOR = 1024 * 1024
MAX_ROWS = 1000  # data rows, below the header row
MAX_COLUMNS = 60
MAX_BLANK_ROWS = 10_000  # blank (e.g. formatted) rows tolerated besides the data rows


class WorkbookInvalid(DomainError):
    """422: the upload is not an acceptable workbook; `errors` lists every problem found."""

    status = 422
    title = "Invalid workbook"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        errors = errors if errors is not None else [{"row": None, "column": None, "cell": None, "message": detail}]
        super().__init__(detail, errors=errors)
        self.errors = errors


@dataclass(frozen=True)
class Column:
    field: str
    kind: str  # text, int, float, bool, choice, ids, inventory, alarms, time, datetime
    meaning: str
    choices: tuple[str, ...] = ()
    width: int = 14


BOOL = ("TRUE", "FALSE")
COLUMNS: tuple[Column, ...] = (
    Column("item_type", "choice", "Required. task (done / not done) or measurement (a number is recorded).",
           ("task", "measurement")),
    Column("name", "text", "Required. Name of the item (1-200 characters).", width=30),
    Column("instructions", "text", "Instructions for whoever completes the item.", width=40),
    Column("machine_id", "int", "Id of the machine the item belongs to (empty: the shop as a whole). "
           "Overridden by ?machine= on upload. Only one of machine_id / equipment_id."),
    Column("equipment_id", "int", "Id of the equipment the item is for. Only one of machine_id / equipment_id."),
    Column("process_id", "int", "If set, the item only comes due while this process is active."),
    Column("schedule_mode", "choice", "0 clock time (default), 1 run time, 2 calendar.", ("0", "1", "2")),
    Column("timer_interval", "float", "Modes 0 and 1: due this long after the last completion. Hours."),
    Column("warning_interval", "float", "A warning this long before the item is due. Hours."),
    Column("cycle_timer", "float", "Accumulated run time to start from (mode 1). Minutes."),
    Column("frequency", "choice", "Mode 2: Y yearly, M monthly, W weekly, D daily (default), H hourly.",
           ("Y", "M", "W", "D", "H")),
    Column("interval", "int", "Mode 2: one out of how many frequency occurrences to run (default 1)."),
    Column("indices", "ids", "Mode 2: when to run within each occurrence, a list of whole numbers separated by "
           "commas, e.g. 1, 14 (negative counts from the end: -2). Ignored for H."),
    Column("months", "int", "Mode 2: months bitfield, January 1, February 2, March 4 ... December 2048; "
           "add them up (585 = Jan+Apr+Jul+Oct, 4095 = every month, default)."),
    Column("weekdays", "int", "Mode 2: weekdays bitfield, Monday 1, Tuesday 2 ... Sunday 64; add them up "
           "(15 = Monday-Thursday, 127 = every day, default)."),
    Column("time_of_day", "time", "Mode 2: time of day to schedule for, HH:MM (24 h, shop time zone)."),
    Column("initial_entry", "datetime", "Pretend the item was last done at this date and time (shop time "
           "zone), or a number of UNIX seconds. Empty: none.", width=20),
    Column("is_critical", "bool", "TRUE: the machine is kept from running while the item is due.", BOOL),
    Column("needed_when_archived", "bool", "TRUE: also needed while the machine is archived (default FALSE).",
           BOOL),
    Column("needed_when_not_archived", "bool", "TRUE (default): needed while the machine is not archived.", BOOL),
    Column("remind_channel_id", "int", "Id of the notification channel for due reminders."),
    Column("difficulty", "choice", "1 easy, 2 medium (default), 3 hard, 4 expert.", ("1", "2", "3", "4")),
    Column("completion_duration", "float", "Expected time to complete. Minutes."),
    Column("inventory_items", "inventory", "Inventory consumed per completion: id:quantity pairs separated by "
           "commas, e.g. 3:1, 7:0 (quantity 0: must be present, not consumed).", width=20),
    Column("trigger_alarms", "alarms", "NC alarm messages that make the item due, one per line in the cell.",
           width=30),
    Column("unit", "text", "Measurement items only: unit of the value (max. 50 characters)."),
    Column("threshold_lower", "float", "Measurement items only: a value below this raises an alert."),
    Column("threshold_upper", "float", "Measurement items only: a value above this raises an alert."),
    Column("threshold_notify_id", "int", "Measurement items only: id of the channel for threshold alerts."),
)
BY_FIELD = {c.field: c for c in COLUMNS}
REQUIRED = ("item_type", "name")


# --- template -------------------------------------------------------------------------------


def build_template() -> bytes:
    """The `.xltx`: a header per importable field, dropdowns for enumerations, instructions."""
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = SHEET
    last_row = MAX_ROWS + 1
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        cell = ws.cell(row=1, column=index, value=column.field)
        cell.font = Font(bold=True)
        cell.comment = Comment(column.meaning, "Taktline")
        ws.column_dimensions[letter].width = max(column.width, len(column.field) + 2)
        if column.choices:
            validation = DataValidation(type="list", formula1='"' + ",".join(column.choices) + '"',
                                        allow_blank=True, showErrorMessage=True, errorTitle=column.field,
                                        error=f"Choose one of: {', '.join(column.choices)}")
            validation.add(f"{letter}2:{letter}{last_row}")
            ws.add_data_validation(validation)
        if column.kind in ("time", "ids", "inventory", "alarms"):
            # Text format on the first data row, so Excel keeps "1, 14" or "07:30" as typed.
            ws.cell(row=2, column=index).number_format = "@"
    ws.freeze_panes = "A2"

    info = wb.create_sheet(INSTRUCTIONS)
    info.append(["How to fill in this template"])
    info["A1"].font = Font(bold=True, size=14)
    for line in (
        f"Fill in one maintenance item per row on the '{SHEET}' sheet, starting at row 2; keep the header row.",
        f"At most {MAX_ROWS} items per upload. Empty cells take the default. Blank rows are skipped.",
        "Upload the file to POST /api/maintenance/items/import (?machine=<id> assigns every item to that "
        "machine). Every row is checked and every error is reported; nothing is created unless all rows are valid.",
        "Units: timer_interval and warning_interval in hours; cycle_timer and completion_duration in minutes.",
        "", "",
    ):
        info.append([line])
    info.append(["Column", "Meaning"])
    header = info.max_row
    info.cell(row=header, column=1).font = Font(bold=True)
    info.cell(row=header, column=2).font = Font(bold=True)
    for column in COLUMNS:
        info.append([column.field, column.meaning])
        info.cell(row=info.max_row, column=2).alignment = Alignment(wrap_text=True)
    info.column_dimensions["A"].width = 26
    info.column_dimensions["B"].width = 110
    wb.active = 0
    wb.template = True
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- upload: archive checks -------------------------------------------------------------------


def check_archive(body: bytes) -> None:
    """A zip whose declared sizes are within bounds; raises WorkbookInvalid otherwise.

    zipfile stops inflating a member at its declared size (and fails its CRC beyond), so the
    declared sizes bound what openpyxl can ever inflate."""
    if len(body) > MAX_BODY:
        raise WorkbookInvalid(f"the file is larger than {MAX_BODY // (1024 * 1024)} MB")
    try:
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise WorkbookInvalid("the body is not an .xlsx/.xltx workbook (not a zip archive)") from None
    if len(members) > MAX_MEMBERS:
        raise WorkbookInvalid(f"the archive has more than {MAX_MEMBERS} members")
    total = 0
    for member in members:
        total += member.file_size
        if member.file_size > RATIO_FLOOR and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise WorkbookInvalid(f"the archive member {member.filename[:100]!r} is compressed suspiciously well "
                                  "(a zip bomb?)")
    if total > MAX_UNCOMPRESSED:
        raise WorkbookInvalid(f"the workbook would inflate to more than {MAX_UNCOMPRESSED // (1024 * 1024)} MB")


# --- upload: cells to fields ------------------------------------------------------------------


class _CellError(ValueError):
    pass


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _to_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise _CellError("expected a whole number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise _CellError("expected a whole number") from None
    return value  # pydantic decides (e.g. 1.5 is refused there)


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise _CellError("expected TRUE or FALSE")


def _int_list(value: Any) -> list[int]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [_to_int(value)]
    parts = [p.strip() for p in re.split(r"[,;\s]+", str(value)) if p.strip()]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise _CellError("expected whole numbers separated by commas, e.g. 1, 14 or -2") from None


def _inventory(value: Any) -> dict[int, int]:
    result: dict[int, int] = {}
    for part in (p.strip() for p in re.split(r"[,;\n]+", _text(value)) if p.strip()):
        match = re.fullmatch(r"(\d+)\s*[:=]\s*(-?\d+)", part)
        if not match:
            raise _CellError(f"expected id:quantity pairs separated by commas, e.g. 3:1, 7:0 (got {part[:40]!r})")
        result[int(match[1])] = int(match[2])
    return result


def _time_of_day(value: Any) -> str:
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, datetime):
        return value.strftime("%H:%M")
    if isinstance(value, float) and 0 <= value < 1:  # an Excel time typed into a number cell
        minutes = round(value * 24 * 60)
        return f"{minutes // 60:02d}:{minutes % 60:02d}"
    text = _text(value).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::00)?", text)
    return f"{int(match[1]):02d}:{match[2]}" if match else text  # pydantic explains a bad one


def _unix(value: Any, zone: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=zone)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime.combine(value, time(), zone).timestamp()
    if isinstance(value, str):
        try:
            return _unix(datetime.fromisoformat(value.strip()), zone)
        except ValueError:
            raise _CellError("expected a date and time (YYYY-MM-DD HH:MM) or UNIX seconds") from None
    return value


def _convert(column: Column, value: Any, zone: ZoneInfo) -> Any:
    kind = column.kind
    if kind == "text":
        return _text(value)
    if kind == "choice":
        text = _text(value).strip()
        return int(text) if column.field in ("schedule_mode", "difficulty") and text.lstrip("-").isdigit() else text
    if kind == "int":
        return _to_int(value)
    if kind == "float":
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise _CellError("expected a number") from None
        return value
    if kind == "bool":
        return _to_bool(value)
    if kind == "ids":
        return _int_list(value)
    if kind == "inventory":
        return _inventory(value)
    if kind == "alarms":
        return [line.strip() for line in _text(value).splitlines() if line.strip()]
    if kind == "time":
        return _time_of_day(value)
    if kind == "datetime":
        return _unix(value, zone)
    raise AssertionError(kind)  # pragma: no cover


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class ParsedRow:
    row: int
    data: ItemCreate
    columns: dict[str, int]  # field -> column number in the uploaded sheet


def _error(row: int | None, column_index: int | None, field: str | None, message: str) -> dict[str, Any]:
    letter = get_column_letter(column_index) if column_index else None
    return {"row": row, "column": field, "cell": f"{letter}{row}" if letter and row else None, "message": message}


def _field_of_model_error(error: dict[str, Any]) -> tuple[str | None, str]:
    """A pydantic error's field: its location, or the `field: ` prefix of a model-level message."""
    message = str(error.get("msg", "invalid"))
    loc = error.get("loc") or ()
    if loc:
        return str(loc[0]), message
    text = message.removeprefix("Value error, ")
    match = re.match(r"(\w+): (.*)", text, re.S)
    if match and match[1] in BY_FIELD:
        return match[1], match[2]
    return None, text


@dataclass(frozen=True)
class Parsed:
    rows: list[ParsedRow]  # the valid rows
    errors: list[dict[str, Any]]  # {row, column, cell, message} of the others


def parse_workbook(body: bytes, zone: ZoneInfo, machine: int | None = None) -> Parsed:
    """Every data row validated: the valid ones as ItemCreates and an error per bad cell.

    Raises WorkbookInvalid for what is not a workbook this importer reads (garbage, a zip
    bomb, too many rows or columns, a wrong header)."""
    if not openpyxl.DEFUSEDXML:  # pragma: no cover - defusedxml is a dependency
        raise RuntimeError("refusing to parse uploaded workbooks without defusedxml")
    check_archive(body)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True, keep_links=False)
    except Exception:  # openpyxl raises anything from KeyError to TypeError on a broken package
        raise WorkbookInvalid("the body is not a readable .xlsx/.xltx workbook") from None
    try:
        return _parse_sheet(wb, zone, machine)
    except WorkbookInvalid:
        raise
    except Exception:  # a malformed sheet part found while streaming
        raise WorkbookInvalid("the workbook could not be read (a damaged sheet?)") from None
    finally:
        wb.close()


def _parse_sheet(wb: Any, zone: ZoneInfo, machine: int | None) -> Parsed:
    ws = wb[SHEET] if SHEET in wb.sheetnames else wb.worksheets[0]
    # The sheet's declared dimension (when present) rejects a huge sheet before any row is read;
    # the row loop below enforces the same limits when the dimension is missing or lies.
    declared_rows, declared_cols = ws.max_row, ws.max_column
    if declared_rows is not None and declared_rows > MAX_ROWS + 1 + MAX_BLANK_ROWS:
        raise WorkbookInvalid(f"the sheet has {declared_rows} rows; at most {MAX_ROWS} items per upload")
    if declared_cols is not None and declared_cols > MAX_COLUMNS:
        raise WorkbookInvalid(f"the sheet has {declared_cols} columns; at most {MAX_COLUMNS}")

    rows = ws.iter_rows(values_only=True)
    header = next(rows, None)
    if header is None:
        raise WorkbookInvalid(f"the sheet is empty; the first row must name the columns ({SHEET} template)")
    errors: list[dict[str, Any]] = []
    columns: dict[int, Column] = {}
    for index, value in enumerate(header[:MAX_COLUMNS + 1], start=1):
        if _blank(value):
            continue
        name = _text(value).strip()
        if index > MAX_COLUMNS:
            raise WorkbookInvalid(f"the sheet has more than {MAX_COLUMNS} columns")
        if name not in BY_FIELD:
            errors.append(_error(1, index, name[:100], "unknown column; use the names of the template's header"))
        elif any(c.field == name for c in columns.values()):
            errors.append(_error(1, index, name, "this column appears twice"))
        else:
            columns[index] = BY_FIELD[name]
    for field in REQUIRED:
        if field not in {c.field for c in columns.values()}:
            errors.append(_error(1, None, field, "required column is missing"))
    if errors:
        raise WorkbookInvalid(_summary(errors), errors)
    index_of = {c.field: i for i, c in columns.items()}

    parsed: list[ParsedRow] = []
    data_rows = 0
    for row_number, values in enumerate(rows, start=2):
        if row_number > MAX_ROWS + 1 + MAX_BLANK_ROWS:  # bounded work even if the dimension lied
            raise WorkbookInvalid(f"the sheet has more than {MAX_ROWS + 1 + MAX_BLANK_ROWS} rows")
        if all(_blank(v) for v in values):
            continue
        data_rows += 1
        if data_rows > MAX_ROWS or (len(values) > MAX_COLUMNS and any(not _blank(v) for v in values[MAX_COLUMNS:])):
            raise WorkbookInvalid(f"too many rows or columns: at most {MAX_ROWS} items and {MAX_COLUMNS} columns")
        row = _parse_row(row_number, values, columns, index_of, zone, machine, errors)
        if row is not None:
            parsed.append(row)
    if not parsed and not errors:
        raise WorkbookInvalid("the sheet has no items below the header row")
    return Parsed(parsed, errors)


def _parse_row(row_number: int, values: tuple[Any, ...], columns: dict[int, Column], index_of: dict[str, int],
               zone: ZoneInfo, machine: int | None, errors: list[dict[str, Any]]) -> ParsedRow | None:
    data: dict[str, Any] = {}
    failed: set[str | None] = set()  # fields already reported: their value is left out below
    for index, value in enumerate(values, start=1):
        if _blank(value):
            continue
        column = columns.get(index)
        if column is None:
            errors.append(_error(row_number, index, None, "a value in a column without a header"))
            failed.add(None)
            continue
        try:
            data[column.field] = _convert(column, value, zone)
        except _CellError as exc:
            errors.append(_error(row_number, index, column.field, str(exc)))
            failed.add(column.field)
    if machine is not None:
        given = data.get("machine_id")
        if given is not None and given != machine:
            errors.append(_error(row_number, index_of.get("machine_id"), "machine_id",
                                 f"differs from the machine of the upload ({machine}); leave it empty"))
            failed.add("machine_id")
        data["machine_id"] = machine
    item: ItemCreate | None = None
    # Validated like PUT /api/maintenance/items/ (the same schema), every error kept. Cross-field
    # checks only run once every field is valid, so a second pass without the bad fields finds them.
    for _ in range(2):
        try:
            item = ItemCreate.model_validate({k: v for k, v in data.items() if k not in failed})
            break
        except ValidationError as exc:
            for error in exc.errors():
                field, message = _field_of_model_error(dict(error))
                if field is None or field not in failed:
                    errors.append(_error(row_number, index_of.get(field) if field else None, field, message))
                    failed.add(field)
    if item is None:
        return None
    return None if failed else ParsedRow(row_number, item, index_of)


def _position(error: dict[str, Any]) -> tuple[int, int]:
    """Sort key: row, then column (AB after Z)."""
    cell = error["cell"]
    return error["row"] or 0, column_index_from_string(coordinate_from_string(cell)[0]) if cell else 0


def _summary(errors: list[dict[str, Any]]) -> str:
    shown = "; ".join(
        f"{e['cell'] or ('row ' + str(e['row']) if e['row'] else 'workbook')}"
        f"{' (' + e['column'] + ')' if e['column'] else ''}: {e['message']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return f"{len(errors)} error(s) in the workbook: {shown}{more}"


# --- upload: references and creation -------------------------------------------------------

_REFERENCES: tuple[tuple[str, type[Any], str], ...] = (
    ("machine_id", KnownMachine, "machine"), ("equipment_id", Equipment, "equipment"),
    ("process_id", KnownProcess, "process"), ("remind_channel_id", Channel, "notification channel"),
    ("threshold_notify_id", Channel, "notification channel"),
)


async def reference_errors(session: AsyncSession, rows: list[ParsedRow]) -> list[dict[str, Any]]:
    """The checks of `items._check_references`, for every row at once (one query per table)."""
    errors: list[dict[str, Any]] = []
    for field, model, what in _REFERENCES:
        wanted = {getattr(r.data, field) for r in rows} - {None}
        known = await repository.existing_ids(session, model, wanted)
        for r in rows:
            value = getattr(r.data, field)
            if value is not None and value not in known:
                errors.append(_error(r.row, r.columns.get(field), field, f"there is no {what} {value}"))
    wanted_inventory = {i for r in rows for i in r.data.inventory_items}
    known_inventory = await repository.existing_ids(session, InventoryItem, wanted_inventory)
    for r in rows:
        missing = sorted(set(r.data.inventory_items) - known_inventory)
        if missing:
            errors.append(_error(r.row, r.columns.get("inventory_items"), "inventory_items",
                                 f"no inventory item {', '.join(map(str, missing))}"))
    errors.sort(key=_position)
    return errors


async def import_items(uow: UnitOfWork, parsed: Parsed) -> dict[str, ItemRead]:
    """Create every row through the item use case, in the caller's unit of work (all or none).

    Any error (a bad cell, or an unknown reference in an otherwise valid row) fails the whole
    upload with every error listed."""
    errors = sorted(parsed.errors + await reference_errors(uow.session, parsed.rows), key=_position)
    if errors:
        raise WorkbookInvalid(_summary(errors), errors)
    created: dict[str, ItemRead] = {}
    for row in parsed.rows:
        item = await items.create_item(uow, row.data)
        created[str(item.id)] = item
    return created
