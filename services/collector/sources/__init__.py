"""Telemetry sources: each turns what a machine says into telemetry payloads."""
