"""The local launcher (deploy/local/run_services.py) and free ports, for system tests and benchmarks."""

from __future__ import annotations

import importlib.util
import random
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


EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def free_port() -> int:
    """A port nothing listens on, for a server started later. Taken below the kernel's ephemeral
    range: a port from that range (what binding port 0 gives) can go to an outgoing connection,
    to PostgreSQL or RabbitMQ, before the server binds it ("address already in use")."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    for _ in range(200):
        port = random.randrange(max(1024, low - 12_000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
