"""STYLE rule 2: aio_pika (and aiormq under it) is imported in exactly one module."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
BROKER_CLIENTS = {"aio_pika", "aiormq"}
ALLOWED = {Path("shared/transport/rabbitmq.py")}


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__" and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                modules.add(first.value.split(".")[0])
    return modules


def test_only_the_rabbitmq_transport_imports_aio_pika() -> None:
    offenders = sorted(
        str(path.relative_to(ROOT))
        for folder in ("shared", "services")
        for path in (ROOT / folder).rglob("*.py")
        if path.relative_to(ROOT) not in ALLOWED
        and imported_modules(path.read_text(encoding="utf-8")) & BROKER_CLIENTS
    )
    assert offenders == []


def test_the_rabbitmq_transport_does_import_it() -> None:
    # Guards the scan itself: if this fails, the test above proves nothing.
    assert "aio_pika" in imported_modules((ROOT / "shared/transport/rabbitmq.py").read_text(encoding="utf-8"))


def test_detects_every_import_form() -> None:
    source = "import aio_pika\nfrom aiormq.exceptions import X\nimport os\n__import__('aio_pika.abc')\n"
    assert imported_modules(source) == {"aio_pika", "aiormq", "os"}
