"""Pure rules of the collector: protocol parsing and telemetry derivation (time passed in)."""
