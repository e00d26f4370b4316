"""docs/events.md describes every registered event type and every field of its payload."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.events import REGISTRY, Envelope

DOC = Path(__file__).resolve().parents[3] / "docs" / "events.md"
HEADING = re.compile(r"^### `([a-z_]+\.[a-z_]+)`\s*$", re.MULTILINE)


def _sections() -> dict[str, str]:
    """Event type -> the text under its `### \\`type\\`` heading, up to the next heading."""
    text = DOC.read_text(encoding="utf-8")
    matches = list(HEADING.finditer(text))
    sections: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following else len(text)
        body = text[match.end() : end].split("\n## ", 1)[0]
        assert match.group(1) not in sections, f"{match.group(1)} is described twice"
        sections[match.group(1)] = body
    return sections


class TestEventsDoc:
    def test_documents_exactly_the_registered_types(self) -> None:
        documented = set(_sections())
        assert not set(REGISTRY) - documented, f"add to docs/events.md: {sorted(set(REGISTRY) - documented)}"
        assert not documented - set(REGISTRY), f"not in REGISTRY: {sorted(documented - set(REGISTRY))}"

    @pytest.mark.parametrize("event_type", sorted(REGISTRY))
    def test_section_names_version_and_every_payload_field(self, event_type: str) -> None:
        section = _sections().get(event_type, "")
        model = REGISTRY[event_type]
        assert f"version {model.version}" in section
        assert "Producer:" in section and "Consumers:" in section
        missing = [name for name in model.model_fields if f"| `{name}` |" not in section]
        assert not missing, f"{event_type}: fields missing from docs/events.md: {missing}"

    def test_catalogue_table_lists_every_type(self) -> None:
        text = DOC.read_text(encoding="utf-8")
        catalogue = text.split("## Catalogue", 1)[1].split("\n## ", 1)[0]
        missing = [t for t in REGISTRY if f"| `{t}` | {REGISTRY[t].version} |" not in catalogue]
        assert not missing, f"catalogue rows missing or with a stale version: {missing}"

    def test_envelope_fields_are_documented(self) -> None:
        envelope = DOC.read_text(encoding="utf-8").split("## Envelope", 1)[1].split("\n## ", 1)[0]
        missing = [name for name in Envelope.model_fields if f"| `{name}` |" not in envelope]
        assert not missing, f"envelope fields missing from docs/events.md: {missing}"
