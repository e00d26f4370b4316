"""The `taktline` command: tokens, the embedded secret, refusals, migrations (no network)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from services import cli, embedded
from services.secret import load_or_create_secret, secret_path
from shared import logs
from shared.auth import Authenticator
from shared.settings import Settings

SECRET = "x" * 40
TOKEN = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No developer TAKTLINE_* variables, no .env, and ./data inside the test's folder.
    for name in list(os.environ):
        if name.startswith("TAKTLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _verify(token: str, secret: str = SECRET) -> Any:
    return Authenticator(Settings(auth_secret=secret)).verify(token)


class TestToken:
    def test_prints_a_verifiable_token_with_the_roles(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("TAKTLINE_AUTH_SECRET", SECRET)
        assert cli.main(["token", "--role", "planner", "--role", "shop", "--subject", "alice"]) == 0
        principal = _verify(capsys.readouterr().out.strip())
        assert principal.subject == "alice"
        assert principal.roles == frozenset({"planner", "shop"})

    def test_uses_the_embedded_secret_file_when_no_secret_is_configured(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        secret = load_or_create_secret(tmp_path / "data")
        assert cli.main(["token", "--role", "auditor"]) == 0
        assert _verify(capsys.readouterr().out.strip(), secret).roles == frozenset({"auditor"})

    def test_unknown_role_exits_2_naming_it(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("TAKTLINE_AUTH_SECRET", SECRET)
        assert cli.main(["token", "--role", "admin", "--role", "foreman"]) == 2
        captured = capsys.readouterr()
        assert "foreman" in captured.err
        assert captured.out == ""

    def test_without_any_secret_exits_2_naming_the_variable(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["token", "--role", "admin"]) == 2
        assert "TAKTLINE_AUTH_SECRET" in capsys.readouterr().err

    def test_without_a_role_is_a_usage_error(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["token"]) == 2
        assert "--role" in capsys.readouterr().err


class TestServe:
    def test_without_amqp_url_exits_2_naming_it(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["serve", "process"]) == 2
        assert "TAKTLINE_AMQP_URL" in capsys.readouterr().err

    def test_without_database_url_exits_2_naming_it(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("TAKTLINE_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
        assert cli.main(["serve", "process"]) == 2
        assert "TAKTLINE_DATABASE_URL" in capsys.readouterr().err

    def test_refuses_to_start_without_a_secret_or_jwks(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("TAKTLINE_AMQP_URL", "amqp://guest:guest@127.0.0.1:1/")
        monkeypatch.setenv("TAKTLINE_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/taktline")
        load_or_create_secret(tmp_path / "data")  # the embedded secret must not count in production
        assert cli.main(["serve", "process"]) == 2
        assert "TAKTLINE_AUTH_SECRET" in capsys.readouterr().err

    def test_services_not_built_yet_exit_2(self, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
        # Every service of the design is built now; a build without one still refuses it clearly.
        from services import registry

        monkeypatch.setattr(registry, "SPECS", {k: v for k, v in registry.SPECS.items() if k != "collector"})
        assert cli.main(["serve", "collector"]) == 2
        assert "not available yet" in capsys.readouterr().err


class TestSecretFile:
    def test_is_created_once_owner_only_and_reused(self, tmp_path: Path) -> None:
        first = load_or_create_secret(tmp_path / "data")
        path = secret_path(tmp_path / "data")
        assert len(first) == 48
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        mtime = path.stat().st_mtime_ns
        assert load_or_create_secret(tmp_path / "data") == first
        assert path.stat().st_mtime_ns == mtime


class TestRun:
    @pytest.fixture
    def started(self, monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
        """Capture what `run` would serve instead of starting uvicorn."""
        seen: list[Settings] = []

        def fake_create_app(settings: Settings, *, migrate: bool = True) -> object:
            assert migrate
            seen.append(settings)
            return object()

        monkeypatch.setattr(embedded, "create_app", fake_create_app)
        monkeypatch.setattr(cli, "_serve_http", lambda app, settings: 0)
        monkeypatch.setattr(logs, "configure_logging", lambda level, fmt: None)
        return seen

    def test_prints_urls_and_an_admin_token_and_keeps_the_secret(
        self, started: list[Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        assert cli.main(["run", "--port", "8123", "--data-dir", "shop"]) == 0
        out = capsys.readouterr().out
        assert "http://127.0.0.1:8123/api/" in out
        assert "http://127.0.0.1:8123/api/docs" in out
        assert "curl -H \"Authorization: Bearer " in out
        secret = secret_path(tmp_path / "shop").read_text().strip()
        token = TOKEN.search(out)
        assert token is not None
        assert _verify(token.group(), secret).roles == frozenset({"admin"})
        assert started[0].log_format == "text"
        assert started[0].port == 8123

        assert cli.main(["run", "--data-dir", "shop"]) == 0  # a second start reuses the secret
        assert started[1].auth_secret is not None
        assert started[1].auth_secret.get_secret_value() == secret

    def test_flags_win_over_environment(
        self, started: list[Settings], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("TAKTLINE_PORT", "9000")
        monkeypatch.setenv("TAKTLINE_LOG_FORMAT", "json")
        monkeypatch.setenv("TAKTLINE_AUTH_SECRET", SECRET)
        assert cli.main(["run", "--port", "9001", "--simulate", "2"]) == 0
        assert (started[0].port, started[0].log_format, started[0].simulate) == (9001, "json", 2)
        out = capsys.readouterr().out
        assert "Simulating 2 machine(s)" in out
        token = TOKEN.search(out)
        assert token is not None and _verify(token.group()).subject == "admin"


class TestMigrate:
    def test_upgrades_the_sqlite_files_and_reports_it(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["migrate", "--data-dir", "db"]) == 0
        assert "process:" in capsys.readouterr().out
        assert (tmp_path / "db" / "process.db").exists()
        assert cli.main(["migrate", "process", "--data-dir", "db"]) == 0
        assert "already at" in capsys.readouterr().out

    def test_unknown_service_exits_2(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert cli.main(["migrate", "inventory"]) == 2
        assert "inventory" in capsys.readouterr().err
