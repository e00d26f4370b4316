"""docs/settings.md documents every Settings field, with its default, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic.fields import FieldInfo

from shared.settings import Settings

DOC = Path(__file__).resolve().parents[3] / "docs" / "settings.md"
TEST_ONLY = {"TAKTLINE_TEST_DATABASE_URL", "TAKTLINE_TEST_AMQP_URL", "TAKTLINE_REQUIRE_INTEGRATION"}
TEST_SECTION = "## Test settings"
ROW = re.compile(r"^\|\s*`(TAKTLINE_[A-Z0-9_]+)`\s*\|\s*([^|]*?)\s*\|", re.MULTILINE)


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def _rows(text: str) -> dict[str, str]:
    return {name: default for name, default in ROW.findall(text)}


def _variable(field: str) -> str:
    return f"TAKTLINE_{field.upper()}"


def _documented_default(info: FieldInfo) -> str:
    value = info.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


class TestSettingsDoc:
    def test_every_setting_has_a_row(self) -> None:
        rows = _rows(_text().split(TEST_SECTION)[0])
        missing = [_variable(f) for f in Settings.model_fields if _variable(f) not in rows]
        assert not missing, f"add to docs/settings.md: {missing}"

    @pytest.mark.parametrize("field", sorted(Settings.model_fields))
    def test_documented_default_matches_the_code(self, field: str) -> None:
        rows = _rows(_text())
        expected = _documented_default(Settings.model_fields[field])
        assert rows.get(_variable(field)) == expected, f"{_variable(field)}: default should read {expected}"

    def test_every_documented_variable_exists(self) -> None:
        known = {_variable(f) for f in Settings.model_fields} | TEST_ONLY
        named = set(re.findall(r"TAKTLINE_[A-Z0-9_]*[A-Z0-9]", _text()))
        assert not named - known, f"docs/settings.md names variables that do not exist: {sorted(named - known)}"

    def test_test_only_variables_are_in_the_test_section(self) -> None:
        text = _text()
        assert TEST_SECTION in text
        before, after = text.split(TEST_SECTION, 1)
        assert set(_rows(after)) == TEST_ONLY
        assert not TEST_ONLY & set(_rows(before))
