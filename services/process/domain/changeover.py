"""When a changeover may be confirmed (the 412 rule of the seed)."""

from __future__ import annotations

from shared.errors import Conflict, PreconditionFailed


def current_process(active_process_id: int | None, loaded_program_process_id: int | None) -> int | None:
    """What the machine is running now: the process of its loaded program, else the confirmed one."""
    return loaded_program_process_id if loaded_program_process_id is not None else active_process_id


def check_changeover(
    *,
    from_machine_id: int,
    to_machine_id: int,
    to_id: int,
    current_process_id: int | None,
    planned: bool,
) -> None:
    """Raise Conflict (409) across machines, PreconditionFailed (412) when the machine is not
    already running the new process, unless the changeover is planned."""
    if from_machine_id != to_machine_id:
        raise Conflict("the two processes belong to different machines")
    if not planned and current_process_id != to_id:
        raise PreconditionFailed(
            f"the machine is running process {current_process_id}, not {to_id}; "
            "load a program of the new process first, or confirm a planned changeover with planned=1"
        )
