"""The collector (not available yet; it arrives with its own issue).

It will hold the protocol clients (`sources/`: MTConnect agent, SHDR adapter, HTTP push,
the machine simulator), the data sources and the latest state and alarm history per
machine, the interlock state from `maintenance.interlock_changed`, and the derivation of
`telemetry.*` events from observations (`domain/derive.py`). Same inner shape as
`services/process/`; add it to `services/registry.py` when it lands.
"""
