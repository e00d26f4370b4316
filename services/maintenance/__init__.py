"""The maintenance service (not available yet; it arrives with its own issue).

It will hold maintenance items (tasks and measurements on clock-time, machine run-time and
calendar schedules), their entries, the scheduling engine (`domain/schedule.py`), equipment,
inventory, alerts, notification channels and the workbook import, plus a small read model
of machines and processes fed by `process.*` / `machine.*` events. Same inner shape as
`services/process/`; add it to `services/registry.py` when it lands.
"""
