"""The local launcher (deploy/local/run_services.py) and free ports, for system tests and benchmarks."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

LAUNCHER = Path(__file__).resolve().parents[2] / "deploy" / "local" / "run_services.py"


def load_launcher() -> ModuleType:
    """The launcher module (a script, not a package): its Stack, find_nginx and service_env."""
    if (loaded := sys.modules.get("taktline_run_services")) is not None:
        return loaded
    spec = importlib.util.spec_from_file_location("taktline_run_services", LAUNCHER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
