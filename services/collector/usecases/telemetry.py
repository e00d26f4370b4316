"""Observations in, telemetry events out: derive against the stored machine state, store alarms.

`ingest` runs inside a caller's transaction and returns the envelopes; the caller decides how
they leave: a live source publishes them with confirms before it commits its new position
(usecases/publishing.py), the HTTP push adds them to the outbox of its unit of work.
Event ids are uuid5(source, position), so re-reading the same data yields the same ids.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession

from services.collector import repository
from services.collector.domain.derive import ActiveAlarm, ClearAlarm, MachineView, RaiseAlarm, derive
from services.collector.domain.mapping import Mapping
from services.collector.domain.observations import Observation
from services.collector.models import Alarm, MachineState
from services.collector.repository import StoredState
from shared.db import from_unix, utcnow
from shared.events import AlarmCleared, AlarmRaised, Envelope, Payload

PRODUCER = "collector"
NAMESPACE = uuid.UUID("0b6f5a43-5c1e-4f57-8d3e-2f1c6f1d7a90")


def event_id(stream: str, position: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{stream}@{position}")


def _envelope(stream: str, position: str, payload: Payload) -> Envelope:
    """The event as it travels: its id from where it was read, its time from when it happened."""
    return Envelope.wrap(payload, PRODUCER, id=event_id(stream, position),
                         occurred_at=from_unix(payload.timestamp))  # type: ignore[attr-defined]


async def _view(session: AsyncSession, machine_id: int, *, with_alarms: bool) -> tuple[MachineState, MachineView]:
    state = await repository.state_for_update(session, machine_id)
    # Only conditions read or change the active alarms: a batch of values (part counts,
    # execution, program) skips that query.
    alarms = {a.key: ActiveAlarm(a.item, a.native_code or "", a.level, a.message)
              for a in await repository.active_alarms(session, machine_id)} if with_alarms else {}
    view = MachineView(part_count=state.part_count, program=state.program, execution=state.execution,
                       tool=state.tool, variables=dict(state.variables or {}), alarms=alarms,
                       last_seen=state.last_seen.timestamp() if state.last_seen else None)
    return state, view


async def ingest(session: AsyncSession, *, machine_id: int, source_id: int | None, stream: str, mapping: Mapping,
                 observations: list[Observation]) -> list[Envelope]:
    """Derive, store alarms and the new state; the envelopes to send, in order."""
    if not observations:
        return []
    state, view = await _view(session, machine_id,
                              with_alarms=any(o.condition is not None for o in observations))
    outputs = derive(view, mapping, machine_id, observations)
    envelopes: list[Envelope] = []
    for output in outputs:
        payload: Payload
        item = output.item
        if isinstance(item, RaiseAlarm):
            alarm = Alarm(machine_id=machine_id, source_id=source_id, key=item.key, item=item.item, level=item.level,
                          native_code=item.native_code or None, severity=item.severity or None,
                          message=item.message, raised_at=from_unix(item.timestamp))
            session.add(alarm)
            await session.flush()  # the integer id travels in the event
            payload = AlarmRaised(machine_id=machine_id, timestamp=item.timestamp, alarm_id=alarm.id,
                                  level=item.level, native_code=item.native_code or None,  # type: ignore[arg-type]
                                  severity=item.severity or None, message=item.message)
        elif isinstance(item, ClearAlarm):
            cleared = [a for a in await repository.active_alarms(session, machine_id) if a.key == item.key]
            if not cleared:
                continue
            for alarm in cleared:
                alarm.cleared_at = from_unix(item.timestamp)
            payload = AlarmCleared(machine_id=machine_id, timestamp=item.timestamp, alarm_id=cleared[0].id,
                                   native_code=item.native_code or None)
        else:
            payload = item
        envelopes.append(_envelope(stream, output.position, payload))
    _store(state, view)
    return envelopes


async def ingest_unlocked(driver: asyncpg.Connection, *, machine_id: int, stream: str, mapping: Mapping,
                          observations: list[Observation], seen_source: int | None, known: StoredState | None = None,
                          attempts: int = 3) -> tuple[set[str], StoredState] | None:
    """`ingest` for a batch without conditions, on PostgreSQL, in at most two statements and no lock.

    Derives from `known` (the state this replica last wrote, if any) or the state as read, and writes
    the new state, the events and the source's status in one statement that applies only if no other
    write moved the state since (its version); a push that lost the race derives again from the
    state the winner committed. Returns the ids of the events queued now and the state written, or
    None after `attempts` lost races: `ingest` under the row lock then waits its turn instead of
    racing on. Alarms need ids and rows of their own, so conditions go there too.
    """
    for _ in range(attempts):
        read = known or await repository.read_state(driver, machine_id)
        known = None
        view = MachineView(part_count=read.part_count, program=read.program, execution=read.execution,
                           tool=read.tool, variables=dict(read.variables or {}),
                           last_seen=read.last_seen.timestamp() if read.last_seen else None)
        events = []
        for output in derive(view, mapping, machine_id, observations):
            payload = output.item
            if isinstance(payload, RaiseAlarm | ClearAlarm):
                raise ValueError("ingest_unlocked takes observations without conditions")
            envelope = _envelope(stream, output.position, payload)
            events.append((str(envelope.id), envelope.type, envelope.model_dump_json()))
        new = StoredState(view.part_count, view.program, view.execution, view.tool, view.variables,
                          from_unix(view.last_seen) if view.last_seen is not None else read.last_seen,
                          read.version + 1)
        queued = await repository.swap_state(driver, machine_id, read, new, events, utcnow(), seen_source)
        if queued is not None:
            return queued, new
    return None


def _store(state: MachineState, view: MachineView) -> None:
    state.part_count, state.program, state.execution, state.tool = (view.part_count, view.program, view.execution,
                                                                     view.tool)
    variables: dict[str, Any] = dict(view.variables)
    state.variables = variables
    if view.last_seen is not None:
        state.last_seen = from_unix(view.last_seen)
