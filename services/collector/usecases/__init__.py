"""Orchestration of the collector's use cases (each through a unit of work or a session)."""
