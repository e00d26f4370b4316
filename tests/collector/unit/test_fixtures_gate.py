"""Missing recordings skip the tests that need them, except under CI, where they fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.collector import fixtures


def test_missing_recording_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fixtures, "FIXTURES", tmp_path / "absent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not there"):
        fixtures.fixture("shdr/x.log")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="not there"):
        fixtures.fixture("shdr/x.log")


def test_fixtures_are_read_beside_the_checkout() -> None:
    assert fixtures.FIXTURES == fixtures.REPO_ROOT.parent / "shared" / "fixtures" / "mtconnect"
