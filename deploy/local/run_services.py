"""Run the three services as separate OS processes behind nginx, without Kubernetes.

`make run-services` (or `python deploy/local/run_services.py`) runs `taktline migrate`, then
`taktline serve process|maintenance|collector` on 127.0.0.1:8001-8003 and nginx on
127.0.0.1:8080 with deploy/nginx/taktline.conf, its upstreams rewritten to those ports (the
routing table is the same file, never a copy). nginx runs unprivileged in the foreground
with its own prefix directory (data/run-services/ by default). Ctrl-C or SIGTERM stops all.

Settings: TAKTLINE_DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/test),
TAKTLINE_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672/), TAKTLINE_AUTH_SECRET
(default: the secret `taktline run` keeps in data/auth-secret, created if missing). Every
other TAKTLINE_* variable passes through to the services.

tests/system/test_gateway.py starts the same stack (Stack) on free ports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[2]
NGINX_CONF = REPO / "deploy" / "nginx" / "taktline.conf"
SERVICE_PORTS = {"process": 8001, "maintenance": 8002, "collector": 8003}
GATEWAY_PORT = 8080
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class LaunchError(RuntimeError):
    pass


def find_nginx() -> str | None:
    """The nginx binary: on PATH, or in /usr/sbin (often not on an unprivileged user's PATH)."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None)


def render_nginx_conf(ports: Mapping[str, int], listen: int, prefix: Path, template: str | None = None) -> str:
    """deploy/nginx/taktline.conf with upstreams at 127.0.0.1:<port>, inside a complete nginx.conf
    whose pid, logs and temp paths all live under `prefix` (so nginx needs no root)."""
    text = NGINX_CONF.read_text() if template is None else template
    for name, port in ports.items():
        text, count = re.subn(rf"(upstream\s+{re.escape(name)}\s*\{{\s*server\s+)[^;\s]+;",
                              rf"\g<1>127.0.0.1:{port};", text)
        if count != 1:
            raise LaunchError(f"{NGINX_CONF}: expected one `upstream {name} {{ server ...; }}`, found {count}")
    text, count = re.subn(r"\blisten\s+[^;]+;", f"listen 127.0.0.1:{listen};", text)
    if count != 1:
        raise LaunchError(f"{NGINX_CONF}: expected one `listen` line, found {count}")
    temp = "\n".join(f"    {kind}_temp_path {prefix / 'temp' / kind};" for kind in TEMP_PATHS)
    body = "\n".join("    " + line if line else line for line in text.splitlines())
    return (f"# Rendered from {NGINX_CONF} by {Path(__file__).name}; do not edit.\n"
            "worker_processes 1;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            f"    access_log {prefix / 'access.log'};\n"
            f"{temp}\n\n{body}\n}}\n")


def service_env(base: Mapping[str, str], **overrides: str) -> dict[str, str]:
    env = {**base, **overrides}
    env.setdefault("TAKTLINE_DATABASE_URL", DEFAULT_DATABASE_URL)
    env.setdefault("TAKTLINE_AMQP_URL", DEFAULT_AMQP_URL)
    return env


class Stack:
    """migrate, three `taktline serve` processes and nginx; `start()` returns once all answer."""

    def __init__(self, env: Mapping[str, str], run_dir: Path, *, ports: Mapping[str, int] | None = None,
                 gateway_port: int = GATEWAY_PORT, log_dir: Path | None = None, nginx: str | None = None) -> None:
        self.env = dict(env)
        self.run_dir = run_dir
        self.ports = dict(ports or SERVICE_PORTS)
        self.gateway_port = gateway_port
        self.log_dir = log_dir  # None: children write to this process's stdout/stderr
        self.nginx = nginx or find_nginx()
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self._logs: list[IO[str]] = []

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def _output(self, name: str) -> IO[str] | None:
        if self.log_dir is None:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("a")  # a restarted process appends
        self._logs.append(log)
        return log

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.log_dir / f"{name}.log" if self.log_dir else None
        return path.read_text()[-chars:] if path and path.exists() else ""

    async def _taktline(self, *args: str, log: str | None = None, **env: str) -> asyncio.subprocess.Process:
        out = self._output(log or (args[1] if args[0] == "serve" else args[0]))
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", *args, cwd=REPO, env={**self.env, **env},
            stdout=out, stderr=asyncio.subprocess.STDOUT if out else None)

    async def start(self, within: float = 60) -> None:
        if self.nginx is None:
            raise LaunchError("nginx is not installed (Debian/Ubuntu: apt-get install nginx-light)")
        await self.migrate(within)
        for name, port in self.ports.items():
            self.processes[name] = await self._taktline("serve", name, "--host", "127.0.0.1", "--port", str(port))
        await self._start_nginx()
        await self._wait_ready(within)

    async def migrate(self, within: float = 60) -> None:
        migrate = await self._taktline("migrate")
        async with asyncio.timeout(within):
            code = await migrate.wait()
        if code != 0:
            raise LaunchError(f"taktline migrate failed (exit {migrate.returncode}) {self.log_tail('migrate')}")

    async def serve(self, service: str, port: int, *, name: str | None = None, within: float = 60) -> None:
        """Start one more `taktline serve <service>` as `name` (a replica, or a restart after
        kill()) and return once it is ready. Replicas are reached on their port, not via nginx."""
        name = name or service
        if (old := self.processes.get(name)) is not None and old.returncode is None:
            raise LaunchError(f"{name} is still running")
        self.processes[name] = await self._taktline("serve", service, "--host", "127.0.0.1", "--port", str(port),
                                                    log=name)
        await self._wait_for(name, f"http://127.0.0.1:{port}/readyz", time.monotonic() + within)

    async def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Signal one child (default: kill -9, no chance to clean up) and return its exit code."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        return await process.wait()

    async def _start_nginx(self) -> None:
        prefix = self.run_dir.resolve()
        # Started as root, nginx runs its workers as `nobody`; they buffer request bodies over
        # 16 kB (a big telemetry push) to disk here.
        owner = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        for kind in TEMP_PATHS:
            (prefix / "temp" / kind).mkdir(parents=True, exist_ok=True)
            if owner is not None:
                os.chown(prefix / "temp" / kind, owner.pw_uid, owner.pw_gid)
        conf = prefix / "nginx.conf"
        conf.write_text(render_nginx_conf(self.ports, self.gateway_port, prefix))
        out = self._output("nginx")
        assert self.nginx is not None
        self.processes["nginx"] = await asyncio.create_subprocess_exec(
            self.nginx, "-e", "stderr", "-p", str(prefix), "-c", str(conf),
            "-g", f"daemon off; pid {prefix / 'nginx.pid'}; error_log stderr;",
            stdout=out, stderr=asyncio.subprocess.STDOUT if out else None)

    async def _wait_ready(self, within: float) -> None:
        checks = {name: f"http://127.0.0.1:{port}/readyz" for name, port in self.ports.items()}
        checks["nginx"] = f"{self.gateway}/healthz"
        deadline = time.monotonic() + within
        for name, url in checks.items():
            await self._wait_for(name, url, deadline)

    async def _wait_for(self, name: str, url: str, deadline: float) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                process = self.processes[name]
                if process.returncode is not None:
                    raise LaunchError(f"{name} exited with {process.returncode} {self.log_tail(name)}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url)).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise LaunchError(f"{name} not ready at {url} in time {self.log_tail(name)}")
                await asyncio.sleep(0.1)

    async def wait_any(self) -> str:
        """Return the name of the first child to exit."""
        waits = {asyncio.ensure_future(p.wait()): name for name, p in self.processes.items()}
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        return waits[next(iter(done))]

    async def stop(self, grace: float = 20) -> dict[str, int | None]:
        """SIGTERM nginx first (no new requests), then the services; SIGKILL what outlives `grace` s."""
        order = ["nginx", *[n for n in self.processes if n != "nginx"]]
        for name in order:
            process = self.processes.get(name)
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for name in order:
            process = self.processes.get(name)
            if process is None:
                continue
            try:
                async with asyncio.timeout(grace):
                    codes[name] = await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                codes[name] = await process.wait()
        for log in self._logs:
            log.close()
        return codes


async def _main(args: argparse.Namespace) -> int:
    from services.secret import load_or_create_secret
    from shared.auth import Authenticator
    from shared.settings import Settings

    env = service_env(os.environ)
    env.setdefault("TAKTLINE_LOG_FORMAT", "text")
    if not (env.get("TAKTLINE_AUTH_SECRET") or env.get("TAKTLINE_AUTH_JWKS_URL")):
        data_dir = Path(env.get("TAKTLINE_DATA_DIR", "data"))
        env["TAKTLINE_AUTH_SECRET"] = load_or_create_secret(data_dir if data_dir.is_absolute() else REPO / data_dir)
    ports = dict(zip(SERVICE_PORTS, range(args.first_port, args.first_port + len(SERVICE_PORTS)), strict=True))
    stack = Stack(env, Path(args.run_dir), ports=ports, gateway_port=args.port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
    except (LaunchError, TimeoutError) as exc:
        print(f"run-services: {exc}", file=sys.stderr)
        await stack.stop()
        return 1
    lines = [f"Taktline gateway: {stack.gateway}/api/ (nginx; services on "
             + ", ".join(f"{n} :{p}" for n, p in ports.items()) + ")"]
    if env.get("TAKTLINE_AUTH_SECRET"):
        settings = Settings(auth_secret=env["TAKTLINE_AUTH_SECRET"], _env_file=None)  # type: ignore[call-arg]
        token = Authenticator(settings).mint("admin", ["admin"])
        lines += ["  Admin token:", f"    {token}", "  Try it:",
                  f'    curl -H "Authorization: Bearer {token}" {stack.gateway}/api/processes/']
    lines.append("  Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)

    stop_task = asyncio.ensure_future(stop.wait())
    child_task = asyncio.ensure_future(stack.wait_any())
    await asyncio.wait({stop_task, child_task}, return_when=asyncio.FIRST_COMPLETED)
    status = 0
    if child_task.done():
        print(f"run-services: {child_task.result()} exited; stopping the others", file=sys.stderr)
        status = 1
    for task in (stop_task, child_task):
        task.cancel()
    await stack.stop()
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=GATEWAY_PORT, help="nginx port (default 8080)")
    parser.add_argument("--first-port", type=int, default=min(SERVICE_PORTS.values()),
                        help="process service port; maintenance and collector take the next two (default 8001)")
    parser.add_argument("--run-dir", default=str(REPO / "data" / "run-services"),
                        help="nginx prefix: rendered config, pid, temp files, access log")
    return asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
