"""SHDR lines: timestamps, several pairs a line, conditions, UNAVAILABLE, commands, assets, garbage."""

from __future__ import annotations

import pytest

from services.collector.domain.observations import Condition, parse_timestamp
from services.collector.domain.shdr import ShdrError, ShdrParser
from tests.collector.fixtures import DMTCD, MAZAK03, OKUMA, fixture


def test_timestamps_with_any_fraction_and_zone() -> None:
    assert parse_timestamp("2022-08-08T13:51:34.7167146Z") == pytest.approx(1659966694.716714)
    assert parse_timestamp("2017-10-28T05:05:34.173147") == parse_timestamp("2017-10-28T05:05:34.173147Z")
    assert parse_timestamp("2014-07-15T07:04:25.608Z") == pytest.approx(1405407865.608)
    assert parse_timestamp("2014-07-15T07:04:25Z") == 1405407865.0


def test_pairs_unavailable_and_empty_values() -> None:
    parsed = ShdrParser().feed("2014-07-15T07:04:25.608Z|program|1|execution|UNAVAILABLE|Tool_number||Zabs|\n")
    assert [(o.key, o.value) for o in parsed.observations] == [
        ("program", "1"), ("execution", None), ("Tool_number", ""), ("Zabs", "")]


def test_condition_lines() -> None:
    parser = ShdrParser()
    fault = parser.feed("2015-10-20T17:35:16.187212Z|system|Fault|454A|||Limit switch Y+").observations[0]
    assert fault.key == "system" and fault.condition == Condition("FAULT", "454A", "", "", "Limit switch Y+")
    normal = parser.feed("2015-10-20T17:35:16Z|servo_cond|Normal||||").observations[0]
    assert normal.condition == Condition("NORMAL")
    gone = parser.feed("2015-10-20T17:35:16Z|motion_cond2|Unavailable||||").observations[0]
    assert gone.condition is not None and gone.condition.level == "UNAVAILABLE"
    # A 3-pair data line is never mistaken for a condition.
    data = parser.feed("2015-10-20T17:35:16Z|mode|NORMAL|a|1|b|2").observations
    assert [(o.key, o.value) for o in data] == [("mode", "NORMAL"), ("a", "1"), ("b", "2")]
    # Declared condition keys take any form, with a message containing pipes.
    declared = ShdrParser(condition_keys=["Xload"]).feed("2020-01-01T00:00:00Z|Xload|WARNING|1|2|HIGH|a|b")
    assert declared.observations[0].condition == Condition("WARNING", "1", "2", "HIGH", "a|b")


def test_legacy_alarm_and_message_keys() -> None:
    parser = ShdrParser(alarm_keys=["alarm"], message_keys=["msg"])
    alarm = parser.feed("2020-01-01T00:00:00Z|alarm|OTHER|E42|CRITICAL|ACTIVE|door open").observations[0]
    assert alarm.condition == Condition("FAULT", "E42", "CRITICAL", "", "door open")
    cleared = parser.feed("2020-01-01T00:00:01Z|alarm|OTHER|E42|CRITICAL|CLEARED|door open").observations[0]
    assert cleared.condition is not None and cleared.condition.level == "NORMAL"
    message = parser.feed("2020-01-01T00:00:00Z|msg|12|check coolant").observations[0]
    assert (message.key, message.value) == ("msg", "check coolant")


def test_commands_assets_and_garbage() -> None:
    parser = ShdrParser()
    assert parser.feed("* PING").ping
    assert parser.feed("* adapterVersion: 2.0").command == "adapterVersion: 2.0"
    assert parser.feed("2022-08-08T13:43:36Z|@ASSET@|1.2|CuttingTool|--multiline--ABCD").observations == []
    assert parser.feed("<CuttingTool toolId='1'>|not|a|line</CuttingTool>").observations == []
    assert parser.feed("--multiline--ABCD").observations == []
    assert parser.feed("2022-08-08T13:43:37Z|avail|AVAILABLE").observations[0].value == "AVAILABLE"
    with pytest.raises(ShdrError):
        parser.feed("=~=~=~=~= PuTTY log 2014.07.15 02:04:25 =~=~=~=~=")
    with pytest.raises(ShdrError):
        parser.feed("\x00\xff garbage")


@pytest.mark.parametrize("name", [OKUMA, DMTCD, MAZAK03])
def test_real_recordings_parse(name: str) -> None:
    parser, errors, observations = ShdrParser(), 0, 0
    with fixture(name).open(encoding="utf-8") as lines:
        for line in lines:
            try:
                observations += len(parser.feed(line).observations)
            except ShdrError:
                errors += 1
    # Only the PuTTY banner of the dmtcd capture is not SHDR; asset documents are skipped whole.
    assert errors == (1 if name == DMTCD else 0)
    assert observations > 200
