"""SHDR (the MTConnect adapter protocol): pipe-delimited lines parsed into observations.

A data line is `timestamp|key|value|key|value…`; a condition line is
`timestamp|key|level|native_code|severity|qualifier|message`; a legacy alarm is
`timestamp|key|code|native_code|severity|state|text`; a message is `timestamp|key|native_code|text`.
Lines starting with `*` are protocol commands (`* PING` asks for `* PONG <ms>`); `@ASSET@`
lines may span several lines (`--multiline--TAG` … `--multiline--TAG`) and are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.collector.domain.observations import (
    CONDITION_LEVELS,
    UNAVAILABLE,
    Condition,
    Observation,
    parse_timestamp,
    value_or_none,
)


class ShdrError(ValueError):
    """A line that is not SHDR (bad timestamp, garbage)."""


@dataclass
class ParsedLine:
    observations: list[Observation] = field(default_factory=list)
    ping: bool = False
    command: str | None = None  # any other `* name: value` line


class ShdrParser:
    """Stateful only for multi-line assets; `condition_keys` etc. come from the source's mapping."""

    def __init__(self, condition_keys: Iterable[str] = (), message_keys: Iterable[str] = (),
                 alarm_keys: Iterable[str] = ()) -> None:
        self.condition_keys = frozenset(condition_keys)
        self.message_keys = frozenset(message_keys)
        self.alarm_keys = frozenset(alarm_keys)
        self._multiline_end: str | None = None
        self.lines = 0

    def feed(self, line: str, position: str = "") -> ParsedLine:
        self.lines += 1
        line = line.rstrip("\r\n")
        if self._multiline_end is not None:
            if line.strip() == self._multiline_end:
                self._multiline_end = None
            return ParsedLine()
        if not line.strip():
            return ParsedLine()
        if line.startswith("*"):
            command = line[1:].strip()
            return ParsedLine(ping=command.upper().startswith("PING"), command=command)
        fields = line.split("|")
        stamp = fields[0]
        try:
            # An empty timestamp means "now" to an agent; we need a time, so it is an error.
            timestamp = parse_timestamp(stamp)
        except ValueError as exc:
            raise ShdrError(f"not an SHDR line (bad timestamp {stamp[:40]!r})") from exc
        if len(fields) > 1 and fields[1].startswith("@"):
            if fields[-1].startswith("--multiline--"):
                self._multiline_end = fields[-1].strip()
            return ParsedLine()
        return ParsedLine(observations=list(self._observations(fields, timestamp, position)))

    def _observations(self, fields: list[str], timestamp: float, position: str) -> Iterable[Observation]:
        key = fields[1] if len(fields) > 1 else ""
        if self._is_condition(fields):
            level, code, severity, qualifier, message = (fields[2:7] + [""] * 5)[:5]
            yield Observation(timestamp, key, condition=Condition(level.strip().upper(), code, severity, qualifier,
                                                                  "|".join(fields[6:]) or message), position=position)
            return
        if key in self.alarm_keys:  # legacy Alarm: code|native_code|severity|state|text
            code, native, severity, state, text = (fields[2:7] + [""] * 5)[:5]
            level = "FAULT" if state.strip().upper() == "ACTIVE" else "NORMAL"
            yield Observation(timestamp, key, condition=Condition(level, native or code, severity, "", text),
                              position=position)
            return
        if key in self.message_keys:
            yield Observation(timestamp, key, value_or_none("|".join(fields[3:]) if len(fields) > 3 else fields[2]),
                              position=position)
            return
        for i in range(1, len(fields) - 1, 2):
            if fields[i]:
                yield Observation(timestamp, fields[i], value_or_none(fields[i + 1]), position=position)

    def _is_condition(self, fields: list[str]) -> bool:
        if len(fields) < 3 or fields[2].strip().upper() not in CONDITION_LEVELS:
            return False
        if fields[1] in self.condition_keys:
            return True
        # Without a device model: a 7-field line whose 5th field (a key in a data line) is empty.
        return len(fields) == 7 and fields[5] == "" and (fields[2].strip().upper() != UNAVAILABLE
                                                         or not any(fields[3:7]))
