"""`taktline run | serve <service> | migrate | token`: parse arguments, build Settings, call factories.

Flags override `TAKTLINE_*` environment variables (and `.env`). Usage errors and missing
settings exit with status 2 and a message naming what is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

from pydantic import ValidationError

from services import registry
from shared.settings import SERVICES, Settings


class CliError(Exception):
    """A usage or configuration problem: printed without a traceback, exit status 2."""


# --- run -----------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from services import embedded
    from services.secret import load_or_create_secret
    from shared.logs import configure_logging

    overrides = _overrides(args, "host", "port", "data_dir", "database_url", "amqp_url", "simulate", "log_format")
    settings = _settings(overrides)
    extra: dict[str, Any] = {}
    if "log_format" not in settings.model_fields_set:
        extra["log_format"] = "text"  # a person reads `run`'s logs; containers (`serve`) get JSON
    if not (settings.auth_secret or settings.auth_jwks_url):
        extra["auth_secret"] = load_or_create_secret(settings.data_dir)
    if extra:
        settings = _settings({**overrides, **extra})
    configure_logging(settings.log_level, settings.log_format)
    app = embedded.create_app(settings, migrate=True)
    print(_banner(settings), flush=True)
    return _serve_http(app, settings)


def _banner(settings: Settings) -> str:
    from shared.auth import Authenticator

    base = f"http://{_display_host(settings.host)}:{settings.port}"
    missing = [name for name in SERVICES if name not in registry.SPECS]
    services = ", ".join(registry.available()) + (f" ({', '.join(missing)}: not available yet)" if missing else "")
    if settings.database_url:
        data = f"database {_masked(settings.database_url)}"
    else:
        data = f"SQLite files in {settings.data_dir.resolve()}"
    events = f"RabbitMQ at {_masked(settings.amqp_url)}" if settings.amqp_url else "in-memory"
    lines = [
        f"Taktline {_version()}: {services}",
        f"  data:    {data}",
        f"  events:  {events}",
        f"  API:     {base}/api/",
        f"  Docs:    {base}/api/docs",
    ]
    if settings.auth_secret:
        token = Authenticator(settings).mint("admin", ["admin"])
        lines += [
            f"  Admin token (valid {_duration(settings.auth_token_ttl)}; `taktline token --role ROLE` mints others):",
            f"    {token}",
            "  Try it:",
            f'    curl -H "Authorization: Bearer {token}" {base}/api/processes/',
        ]
    else:
        lines.append("  Tokens: from your OIDC provider (TAKTLINE_AUTH_JWKS_URL is set)")
    if settings.simulate:
        lines.append(f"  Simulating {settings.simulate} machine(s) (\"Simulated VMC-N\"): a part about every 20 s; "
                     f"see {base}/api/parts/ and {base}/api/processes/?efficiency=1")
    return "\n".join(lines)


# --- serve ---------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    from services import standalone
    from shared.logs import configure_logging

    _check_available(args.service)
    settings = _settings(_overrides(args, "host", "port", "log_format"))
    try:
        standalone.check_settings(args.service, settings)
    except standalone.MissingSetting as exc:
        raise CliError(f"serve {args.service}: {exc}") from exc
    configure_logging(settings.log_level, settings.log_format)
    app = standalone.create_app(args.service, settings, migrate=args.migrate)
    return _serve_http(app, settings)


def _serve_http(app: Any, settings: Settings) -> int:
    import uvicorn

    app.state.freeze_gc = True  # see shared/runtime.py build_app

    # log_config=None: uvicorn's loggers go through our handlers (JSON or text).
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None))
    server.run()
    return 0 if server.started else 1  # not started: the lifespan (migrations, broker) failed


# --- migrate -------------------------------------------------------------------------------


def _migrate(args: argparse.Namespace) -> int:
    names = args.services or registry.available()
    for name in names:
        _check_available(name)
    settings = _settings(_overrides(args, "data_dir", "database_url"))
    return asyncio.run(_migrate_all(names, settings))


async def _migrate_all(names: Sequence[str], settings: Settings) -> int:
    from sqlalchemy.exc import DBAPIError

    from shared.db import make_engine
    from shared.migrations import upgrade

    for name in names:
        spec = registry.load_spec(name)
        url, schema = settings.database_url_for(name), settings.schema_for(name)
        engine = make_engine(url, schema=schema)
        where = _masked(url) + (f" (schema {schema})" if engine.dialect.name == "postgresql" else "")
        try:
            before = await _revision(engine)
            await upgrade(engine, spec.migrations, schema)
            after = await _revision(engine)
        except (OSError, TimeoutError, DBAPIError) as exc:
            reason = getattr(exc, "orig", None) or exc
            print(f"taktline: error: {name}: migrating {where} failed: {reason}", file=sys.stderr)
            return 1
        finally:
            await engine.dispose()
        if before == after:
            print(f"{name}: {where} already at {after}")
        else:
            print(f"{name}: {where} upgraded from {before or 'an empty database'} to {after}")
    return 0


async def _revision(engine: Any) -> str | None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    async with engine.connect() as conn:
        try:
            return await conn.scalar(text("SELECT version_num FROM alembic_version"))
        except DBAPIError:
            return None  # no alembic_version table yet (other problems resurface in the upgrade)


# --- token ---------------------------------------------------------------------------------


def _token(args: argparse.Namespace) -> int:
    from services.secret import read_secret, secret_path
    from shared.auth import ROLES, Authenticator

    bad = [role for role in args.roles if role not in ROLES]
    if bad:
        raise CliError(f"unknown role {', '.join(map(repr, bad))} (roles: {', '.join(ROLES)})")
    if args.ttl is not None and args.ttl <= 0:
        raise CliError("--ttl must be a positive number of seconds")
    overrides = _overrides(args, "data_dir")
    settings = _settings(overrides)
    if not settings.auth_secret:
        secret = read_secret(settings.data_dir)
        if secret is None:
            raise CliError(
                "no HS256 secret: set TAKTLINE_AUTH_SECRET, or start `taktline run` once to create "
                f"{secret_path(settings.data_dir)}"
                + (" (with TAKTLINE_AUTH_JWKS_URL, tokens come from your OIDC provider)"
                   if settings.auth_jwks_url else "")
            )
        settings = _settings({**overrides, "auth_secret": secret})
    print(Authenticator(settings).mint(args.subject, list(dict.fromkeys(args.roles)), ttl=args.ttl))
    return 0


# --- helpers -------------------------------------------------------------------------------


def _settings(overrides: dict[str, Any]) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(
            f"TAKTLINE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise CliError(f"invalid settings: {problems}") from exc


def _overrides(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """Only the flags actually given, so unset flags leave env values alone."""
    return {name: value for name in names if (value := getattr(args, name, None)) is not None}


def _check_available(name: str) -> None:
    try:
        registry.check(name)
    except KeyError:
        raise CliError(f"unknown service {name!r} (services: {', '.join(SERVICES)})") from None
    except registry.NotAvailable as exc:
        raise CliError(str(exc)) from exc


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _duration(seconds: int) -> str:
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{seconds // 60} min"


def _masked(url: str | None) -> str:
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url or "")


def _version() -> str:
    try:
        return metadata.version("taktline")
    except metadata.PackageNotFoundError:
        return "dev"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taktline", description="Taktline shop-floor system.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    def http(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", help="address to bind (TAKTLINE_HOST, default 127.0.0.1)")
        p.add_argument("--port", type=int, help="port to bind (TAKTLINE_PORT, default 8000)")
        p.add_argument("--log-format", choices=("text", "json"), help="log line format")

    run = command("run", _run, "run every available service in one process (the embedded default)")
    http(run)
    run.add_argument("--data-dir", help="folder for SQLite files and the generated secret (default ./data)")
    run.add_argument("--database-url", help="PostgreSQL URL instead of SQLite files")
    run.add_argument("--amqp-url", help="RabbitMQ URL instead of the in-memory transport")
    run.add_argument("--simulate", type=int, metavar="N", help="run N simulated machines (created on first start)")

    serve = command("serve", _serve, "run one service alone on PostgreSQL and RabbitMQ, as a container does")
    serve.add_argument("service", choices=SERVICES)
    http(serve)
    serve.add_argument("--migrate", action="store_true", help="apply migrations on start (default: no)")

    migrate = command("migrate", _migrate, "apply the Alembic migrations of the named services (default: all)")
    migrate.add_argument("services", nargs="*", metavar="SERVICE", help=f"one of: {', '.join(SERVICES)}")
    migrate.add_argument("--data-dir", help="folder of the SQLite files (default ./data)")
    migrate.add_argument("--database-url", help="database URL (default: TAKTLINE_DATABASE_URL or SQLite files)")

    token = command("token", _token, "print a bearer token (HS256)")
    token.add_argument("--role", dest="roles", action="append", required=True, metavar="ROLE",
                       help="a role for the token; repeat for several")
    token.add_argument("--subject", default="cli", help="the token's user (sub claim)")
    token.add_argument("--ttl", type=int, metavar="SECONDS", help="lifetime (default TAKTLINE_AUTH_TOKEN_TTL)")
    token.add_argument("--data-dir", help="where `taktline run` keeps its secret (default ./data)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2): return, so callers get an int
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.handler(args))
    except CliError as exc:
        print(f"taktline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
