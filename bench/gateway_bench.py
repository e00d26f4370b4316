"""Benchmark: HTTP through the gateway. Requests/s and latency (p50, p90, p99, max) of
`GET /api/processes/` (1,000 processes) and `GET /api/processes/{id}?programs=1&tools=1`
(target: p99 under 20 ms at 1,000 requests/s), and the peak memory of each service under that load.

Run with `.venv/bin/python bench/gateway_bench.py` (or `make bench`); needs PostgreSQL, RabbitMQ
(TAKTLINE_TEST_DATABASE_URL / TAKTLINE_TEST_AMQP_URL, default: local) and nginx. Not a test: it
prints the figures.

How:
- The stack is the one `make run-services` runs: deploy/local/run_services.py's `Stack` (migrate,
  three `taktline serve` processes, nginx with the real deploy/nginx/taktline.conf) on free ports,
  with its own schemas, exchanges and queues (set up and removed as tests/system/test_gateway.py
  does, also on failure). TAKTLINE_LOG_LEVEL=WARNING; uvicorn's access log is off at any level
  (shared/logs.py); nginx's access log stays on (the Stack renders it and offers no way to
  change that).
- Seeding goes through the gateway: 20 machines, 1,000 processes, each with 2 programs and
  2 tool assemblies of 2 tools (so `?programs=1&tools=1` answers real nested data).
- Load comes from a minimal HTTP/1.1 keep-alive client on asyncio streams in this process
  (Content-Length or chunked bodies; a reconnect when nginx closes a connection). On this
  2-core machine it shares the CPUs with the services, nginx and PostgreSQL: its own CPU time
  is printed with each scenario.
  - closed loop: N connections each sending the next request as soon as the last one is
    answered, for the maximum throughput (latency from send);
  - open loop: requests scheduled at a fixed rate (1,000/s) from a pool of connections,
    latency measured from the *scheduled* send time (no coordinated omission: a request that
    waits for a free connection counts its wait). When the stack cannot keep up, nothing more
    is sent once a request is --drain s late past the duration, what is in flight is awaited,
    and the requests never sent are counted: the percentiles are then lower bounds. An
    endpoint whose closed-loop maximum is under the rate also gets an open loop at 70% of
    that maximum (its latency when not overloaded).
  Each endpoint gets a warm-up first; detail requests cycle over all 1,000 ids. Before them,
  an open loop on nginx's own /healthz shows what the client and nginx alone add.
- CPU per scenario from /proc: each service, nginx, this client, every PostgreSQL and
  RabbitMQ process (also ones serving others), and "other": the rest of the machine's busy
  time (another test run on the same machine shows up there and skews the figures).
- Peak memory: VmHWM from /proc/<pid>/status of each service's Python process and of nginx
  (master and worker), reset through /proc/<pid>/clear_refs before each endpoint's load, so it
  is the peak under that load (VmRSS before it is printed too).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import json
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.settings import SERVICES
from shared.testing.http1 import Connection, ProtocolError
from shared.testing.infra import find_amqp_url, find_database_url
from shared.testing.stack import free_port, load_launcher
from tests.topology import remove_test_objects

SECRET = "bench-secret-" + "x" * 32
TOKEN = jwt.encode({"sub": "bench", "roles": ["admin"], "exp": 4_000_000_000}, SECRET, algorithm="HS256")
TARGET_P99 = 0.020
TICK = os.sysconf("SC_CLK_TCK")
LIST_PATH = "/api/processes/"
DETAIL_PATH = "/api/processes/{id}?programs=1&tools=1"


def raw_get(path: str, port: int, gzip: bool = True) -> bytes:
    """A GET as a browser or httpx sends it: taking gzip (the client does not decompress: its CPU is
    not the service's; check_bodies does, once)."""
    encoding = "Accept-Encoding: gzip, deflate\r\n" if gzip else ""
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Accept: application/json\r\n{encoding}\r\n").encode()


# --- measuring ---------------------------------------------------------------------------------

@dataclass
class Result:
    label: str
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    elapsed: float = 0.0
    not_sent: int = 0
    scheduled: int = 0
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return math.nan
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def line(self) -> str:
        ms = [self.pct(p) * 1000 for p in (50, 90, 99, 100)]
        errors = sum(self.errors.values())
        text = (f"  {self.label:<34} {len(self.latencies):>6} in {self.elapsed:5.1f} s = {self.rate:7.1f}/s   "
                f"p50 {ms[0]:7.1f}  p90 {ms[1]:7.1f}  p99 {ms[2]:7.1f}  max {ms[3]:7.1f} ms   errors {errors}")
        if self.errors:
            text += " (" + ", ".join(f"{k}: {v}" for k, v in self.errors.most_common()) + ")"
        if self.not_sent:
            text += (f"\n  {'':<34} {self.not_sent} of {self.scheduled} scheduled never sent (overloaded): "
                     "the percentiles are lower bounds")
        return text


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of one process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def system_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / TICK, sum(values[:8]) / TICK


GROUPS = {"postgres": "PostgreSQL", "beam.smp": "RabbitMQ"}  # by /proc/<pid>/comm


class CpuMeter:
    """CPU seconds of our processes, of PostgreSQL and RabbitMQ (every process of theirs, also
    ones serving others), of this client, and of the whole machine."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def snapshot(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError):
                found[name] = proc_cpu(pid)
        found["bench client"] = sum(os.times()[:2])
        for label in GROUPS.values():
            found[label] = 0.0
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    with open(f"/proc/{entry}/stat") as f:
                        stat = f.read()
                    comm = stat[stat.index("(") + 1:stat.rindex(")")]
                    if comm in GROUPS:
                        fields = stat.rsplit(")", 1)[1].split()
                        found[GROUPS[comm]] += (int(fields[11]) + int(fields[12])) / TICK
        found["machine busy"], found["machine total"] = system_cpu()
        return found

    @staticmethod
    def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {k: max(0.0, after[k] - before[k]) for k in before if k in after}


def cpu_line(cpu: dict[str, float], elapsed: float) -> str:
    if not cpu or not elapsed:
        return ""
    cores = os.cpu_count() or 1
    busy = cpu.pop("machine busy", 0.0)
    cpu.pop("machine total", None)
    ours = sum(cpu.values())
    parts = [f"{name} {seconds / elapsed:.0%}" for name, seconds in cpu.items() if seconds / elapsed >= 0.005]
    parts.append(f"other {max(0.0, busy - ours) / elapsed:.0%}")
    return f"  {'':<34} CPU, % of one core: " + ", ".join(parts) + f"; machine {busy / elapsed / cores:.0%} busy"


async def closed_loop(label: str, port: int, requests: list[bytes], connections: int, duration: float,
                      meter: CpuMeter) -> Result:
    clock = time.monotonic  # not loop.time(): uvloop's has millisecond resolution
    result = Result(label)
    counter = 0
    conns = [Connection("127.0.0.1", port) for _ in range(connections)]
    before = meter.snapshot()
    started = clock()
    deadline = started + duration

    async def worker(conn: Connection) -> None:
        nonlocal counter
        while clock() < deadline:
            raw = requests[counter % len(requests)]
            counter += 1
            sent = clock()
            try:
                async with asyncio.timeout(30):
                    status, _ = await conn.request(raw)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ProtocolError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
                await conn.close()
                continue
            result.latencies.append(clock() - sent)
            if status != 200:
                result.errors[str(status)] += 1

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        result.elapsed = clock() - started
        result.cpu = CpuMeter.delta(before, meter.snapshot())
        for conn in conns:
            await conn.close()
    return result


async def open_loop(label: str, port: int, requests: list[bytes], rate: float, connections: int,
                    duration: float, drain: float, meter: CpuMeter) -> Result:
    """`rate` requests/s on a schedule; latency from each request's scheduled time."""
    clock = time.monotonic  # not loop.time(): uvloop's has millisecond resolution
    total = int(rate * duration)
    result = Result(label, scheduled=total)
    next_slot = 0
    conns = [Connection("127.0.0.1", port) for _ in range(connections)]
    before = meter.snapshot()
    start = clock() + 0.05
    stop_sending = start + duration + drain
    last_done = start

    async def worker(conn: Connection) -> None:
        nonlocal next_slot, last_done
        while next_slot < total:
            slot = next_slot
            next_slot += 1
            scheduled = start + slot / rate
            now = clock()
            if scheduled > now:
                await asyncio.sleep(scheduled - now)
            elif now > stop_sending:
                result.not_sent += total - slot
                next_slot = total
                return
            try:
                async with asyncio.timeout(max(1.0, stop_sending + 30 - clock())):
                    status, _ = await conn.request(requests[slot % len(requests)])
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    ProtocolError, ValueError) as exc:
                result.errors[type(exc).__name__] += 1
                await conn.close()
                continue
            last_done = clock()
            result.latencies.append(last_done - scheduled)
            if status != 200:
                result.errors[str(status)] += 1

    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        result.elapsed = max(last_done - start, 1e-9)
        result.cpu = CpuMeter.delta(before, meter.snapshot())
        for conn in conns:
            await conn.close()
    return result


# --- memory ------------------------------------------------------------------------------------

def status_kib(pid: int, key: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [part.decode(errors="replace") for part in f.read().split(b"\0") if part]


def measured_pids(stack: Any) -> dict[str, int]:
    """{label: pid} of each service's Python process and nginx's master and workers, checked
    against their command lines (the Stack's children are the processes themselves, no shell)."""
    pids: dict[str, int] = {}
    for name in SERVICES:
        pid = stack.processes[name].pid
        args = cmdline(pid)
        if not ("services.cli" in args and "serve" in args and name in args and "python" in Path(args[0]).name):
            raise RuntimeError(f"{name}: pid {pid} is not the service process: {args}")
        if kids := children(pid):
            raise RuntimeError(f"{name}: pid {pid} has children {kids}; which one serves?")
        pids[name] = pid
    master = stack.processes["nginx"].pid
    if "nginx" not in Path(cmdline(master)[0]).name:
        raise RuntimeError(f"nginx: pid {master} is {cmdline(master)}")
    pids["nginx master"] = master
    for n, pid in enumerate(children(master)):
        pids["nginx worker" + (f" {n + 1}" if n else "")] = pid
    return pids


def reset_peaks(pids: dict[str, int]) -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs)."""
    ok = True
    for pid in pids.values():
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def peaks_mib(pids: dict[str, int]) -> dict[str, float]:
    return {name: (status_kib(pid, "VmHWM") or 0) / 1024 for name, pid in pids.items()}


def memory_lines(pids: dict[str, int], peaks: dict[str, float], rss_before: dict[str, int | None],
                 peaks_reset: bool) -> list[str]:
    lines = []
    for name, pid in pids.items():
        before = rss_before.get(name)
        lines.append(f"    {name:<14} (pid {pid:>7}): peak {peaks[name]:7.1f} MiB"
                     f"   (RSS before the load {before / 1024 if before else math.nan:6.1f} MiB)")
    if not peaks_reset:
        lines.append("    (clear_refs not writable: the peaks are since each process started, seeding included)")
    return lines


# --- seeding -----------------------------------------------------------------------------------

async def seed(gateway: str, machines: int, processes: int, concurrency: int = 16) -> list[int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=gateway, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60,
                                 limits=limits) as client:
        gate = asyncio.Semaphore(concurrency)

        async def put(url: str, body: dict[str, Any]) -> dict[str, Any]:
            # A few retries: PostgreSQL or RabbitMQ restarting for a moment answers 500/502/503.
            # A 409 on a retry is the first attempt having committed after all (programs).
            for attempt in range(6):
                try:
                    async with gate:
                        response = await client.put(url, json=body)
                except httpx.TransportError:
                    response = None
                if response is not None and (response.status_code == 201
                                             or (attempt and response.status_code == 409)):
                    return response.json() if response.status_code == 201 else {}
                if response is not None and response.status_code < 500:
                    break
                await asyncio.sleep(0.5 * 2 ** attempt)
            detail = f"{response.status_code} {response.text[:300]}" if response is not None else "no answer"
            raise RuntimeError(f"PUT {url} {body}: {detail}")

        async def each(calls: list[Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
            return list(await asyncio.gather(*calls))

        machine_ids = [m["id"] for m in await each([
            put("/api/machines/", {"name": f"VMC {n + 1:02d}", "location": f"Cell {n % 4 + 1}"})
            for n in range(machines)])]
        made = await each([
            put("/api/processes/", {
                "machine_id": machine_ids[n % machines], "name": f"Part {n:04d} Op {10 * (n % 3 + 1)}",
                "description": f"Bracket {n:04d}, 6061-T6, second op on soft jaws",
                "time_per_cycle": 4.5 + n % 7, "parts_per_cycle": 1 + n % 4, "part_material_cost": 3.25,
                "part_sell_price": 18.5, "tags": ["bench", f"family-{n % 12}"],
                "cv_map": {"Spindle load": {"number": 500 + n % 5}},
                "setup_instructions": "Indicate the vise; touch off T1-T4.",
            }) for n in range(processes)])
        process_ids = [p["id"] for p in made]
        calls: list[Awaitable[dict[str, Any]]] = []
        for p in made:
            for k in range(2):
                calls.append(put("/api/programs/", {
                    "machine_id": p["machine_id"], "process_id": p["id"], "filename": f"O{p['id']:05d}{k}.nc",
                    "name": f"{p['name']} side {k + 1}"}))
                calls.append(put("/api/toolAssemblies/", {
                    "machine_id": p["machine_id"], "process_id": p["id"], "name": f"Holder {k + 1}",
                    "location": f"T{p['id'] * 2 + k}", "tools": [
                        {"name": "Endmill 10 mm", "tool_type": "endmill", "part_number": "EM-10-3F",
                         "diameter": 10.0, "length": 72.0},
                        {"name": "Collet ER32", "tool_type": "holder", "part_number": "ER32-10"}]}))
        await each(calls)
    return process_ids


async def check_bodies(port: int, process_ids: list[int], processes: int) -> str:
    conn = Connection("127.0.0.1", port)
    try:
        status, body = await conn.request(raw_get(LIST_PATH, port, gzip=False))
        status_gz, packed = await conn.request(raw_get(LIST_PATH, port))
        if status_gz != 200 or gzip.decompress(packed) != body:
            raise RuntimeError(f"GET {LIST_PATH} with gzip: {status_gz}, not the same body")
        listed = json.loads(body)
        if status != 200 or len(listed) != processes:
            raise RuntimeError(f"GET {LIST_PATH}: {status}, {len(listed)} processes, expected {processes}")
        sample = listed[str(process_ids[0])]
        if "programs" in sample or "tools" in sample or sample["name"] != "Part 0000 Op 10":
            raise RuntimeError(f"GET {LIST_PATH}: unexpected object {sample}")
        for pid in (process_ids[0], process_ids[-1]):
            path = DETAIL_PATH.format(id=pid)
            status, detail_body = await conn.request(raw_get(path, port, gzip=False))
            detail = json.loads(detail_body)
            if status != 200 or len(detail.get("programs") or {}) != 2 or len(detail.get("tools") or {}) != 4 \
                    or detail.get("unused_tool_locations") is None:
                raise RuntimeError(f"GET {path}: {status} {detail_body[:300]!r}")
        return (f"responses checked: list {len(listed)} processes, {len(body):,} bytes ({len(packed):,} gzipped); "
                f"detail 2 programs and 4 tools, {len(detail_body):,} bytes")
    finally:
        await conn.close()


# --- the run -----------------------------------------------------------------------------------

@dataclass
class EndpointFigures:
    name: str
    closed: Result
    fixed: Result
    sustainable: Result | None
    memory: dict[str, float]


async def settle(busy_below: float = 0.15, within: float = 60) -> str:
    """Wait (at most `within` s) until the machine is mostly idle for two seconds in a row: the
    services consume the seeding's events, PostgreSQL analyses the new rows."""
    began = time.monotonic()
    quiet = 0
    while quiet < 2 and time.monotonic() - began < within:
        busy, total = system_cpu()
        await asyncio.sleep(1)
        busy2, total2 = system_cpu()
        quiet = quiet + 1 if (busy2 - busy) / max(total2 - total, 1e-9) < busy_below else 0
    waited = time.monotonic() - began
    if quiet >= 2:
        return f"machine quiet (under {busy_below:.0%} busy) {waited:.0f} s after the seeding"
    return f"machine still busy {waited:.0f} s after the seeding (other load?): measuring anyway"


async def bench_endpoint(name: str, port: int, requests: list[bytes], args: argparse.Namespace,
                         pids: dict[str, int]) -> EndpointFigures:
    meter = CpuMeter(pids)
    print(f"{name}")
    await closed_loop("warm-up", port, requests, args.connections, args.warmup, meter)
    rss_before = {label: status_kib(pid, "VmRSS") for label, pid in pids.items()}
    peaks_reset = reset_peaks(pids)

    def show(result: Result) -> None:
        print(result.line())
        if line := cpu_line(dict(result.cpu), result.elapsed):
            print(line)
        if result.latencies and "process" in result.cpu:  # steadier than the rates when others load the CPUs
            print(f"  {'':<34} process service CPU per request: "
                  f"{result.cpu['process'] / len(result.latencies) * 1000:.1f} ms")
        sys.stdout.flush()

    closed = await closed_loop(f"closed loop, {args.connections} connections", port, requests,
                               args.connections, args.duration, meter)
    show(closed)
    await asyncio.sleep(1)
    fixed = await open_loop(f"open loop at {args.rate:,.0f}/s, {args.pool} conns", port, requests, args.rate,
                            args.pool, args.duration, args.drain, meter)
    show(fixed)
    sustainable = None
    if closed.rate < args.rate * 0.95:
        rate = max(1.0, round(closed.rate * 0.7))
        await asyncio.sleep(2)  # open_loop returned: nothing is in flight any more
        sustainable = await open_loop(f"open loop at {rate:,.0f}/s (70% of max)", port, requests, rate,
                                      args.pool, args.duration, args.drain, meter)
        show(sustainable)
    memory = peaks_mib(pids)
    print("  peak memory under this load (VmHWM):")
    print("\n".join(memory_lines(pids, memory, rss_before, peaks_reset)))
    return EndpointFigures(name, closed, fixed, sustainable, memory)


def verdict(figures: EndpointFigures, rate: float) -> str:
    fixed = figures.fixed
    p99 = fixed.pct(99)
    achieved = len(fixed.latencies) / (fixed.scheduled / rate) if fixed.scheduled else 0.0
    met = (not fixed.not_sent and not fixed.errors and achieved >= 0.99 * rate and p99 < TARGET_P99)
    extra = f", {fixed.not_sent} never sent" if fixed.not_sent else ""
    closed = figures.closed
    cpu = closed.cpu.get("process", math.nan) / max(len(closed.latencies), 1) * 1000
    return (f"  {figures.name:<44} max {closed.rate:7.1f}/s closed loop ({cpu:.1f} ms process CPU a request); "
            f"at {rate:,.0f}/s: {fixed.rate:7.1f}/s done, p99 {p99 * 1000:8.1f} ms{extra} -> target "
            f"{'MET' if met else 'MISSED'}")


async def run(args: argparse.Namespace) -> int:
    launcher = load_launcher()
    nginx = launcher.find_nginx()
    if nginx is None:
        print("nginx is not installed (apt-get install nginx-light); skipped", file=sys.stderr)
        return 1
    database_url, reason = find_database_url()
    amqp_url, amqp_reason = find_amqp_url()
    if database_url is None or amqp_url is None:
        print(f"needs PostgreSQL and RabbitMQ: {reason}; {amqp_reason}", file=sys.stderr)
        return 1

    tag = f"gwb{uuid.uuid4().hex[:8]}"  # a prefix no other run uses
    print(f"creating schemas {tag}_*, queues {tag}.*, exchanges taktline.{tag}[.dead]; all removed at the end",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="taktline-gateway-bench-") as tmp_name:
        tmp = Path(tmp_name)
        env = launcher.service_env(
            os.environ, TAKTLINE_DATABASE_URL=database_url, TAKTLINE_DATABASE_SCHEMA_PREFIX=f"{tag}_",
            TAKTLINE_AMQP_URL=amqp_url, TAKTLINE_EXCHANGE=f"taktline.{tag}",
            TAKTLINE_DEAD_EXCHANGE=f"taktline.{tag}.dead", TAKTLINE_QUEUE_PREFIX=f"{tag}.",
            TAKTLINE_AUTH_SECRET=SECRET, TAKTLINE_DATA_DIR=str(tmp / "data"), TAKTLINE_LOG_LEVEL="WARNING")
        stack = launcher.Stack(env, tmp / "nginx", ports={name: free_port() for name in SERVICES},
                               gateway_port=free_port(), log_dir=tmp / "logs", nginx=nginx)
        try:
            await stack.start(within=60)
            return await measure(stack, args)
        except Exception:
            for name in (*SERVICES, "nginx", "migrate"):
                if tail := stack.log_tail(name, 2000):
                    print(f"--- {name} log ---\n{tail}", file=sys.stderr)
            raise
        finally:
            await teardown(stack, env, tag, amqp_url, database_url)


async def measure(stack: Any, args: argparse.Namespace) -> int:
    port = stack.gateway_port
    began = time.perf_counter()
    process_ids = await seed(stack.gateway, args.machines, args.processes)
    print(f"seeded through the gateway: {args.machines} machines, {len(process_ids)} processes, "
          f"{2 * len(process_ids)} programs, {2 * len(process_ids)} tool assemblies, {4 * len(process_ids)} tools "
          f"in {time.perf_counter() - began:.1f} s")
    print(await check_bodies(port, process_ids, args.processes))
    pids = measured_pids(stack)
    print(await settle())
    print(f"duration {args.duration:g} s per scenario after a {args.warmup:g} s warm-up; latencies in ms; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} before the load")
    sys.stdout.flush()

    # The floor: nginx answers /healthz itself; shows what the client and nginx add on this machine.
    floor = await open_loop(f"open loop at {args.rate:,.0f}/s, {args.pool} conns", port,
                            [raw_get("/healthz", port)], args.rate, args.pool, min(5.0, args.duration), args.drain,
                            CpuMeter(pids))
    print("GET /healthz (answered by nginx alone: the load generator's and nginx's share)")
    print(floor.line())
    print(cpu_line(dict(floor.cpu), floor.elapsed))

    endpoints = [
        (f"GET {LIST_PATH} ({args.processes:,} processes)", [raw_get(LIST_PATH, port)]),
        (f"GET {DETAIL_PATH}", [raw_get(DETAIL_PATH.format(id=pid), port) for pid in process_ids]),
    ]
    figures = []
    for name, requests in endpoints:
        figures.append(await bench_endpoint(name, port, requests, args, pids))
        await asyncio.sleep(2)
    print(f"Summary (target: p99 < {TARGET_P99 * 1000:.0f} ms at {args.rate:,.0f} requests/s, no errors):")
    print(f"  {'GET /healthz (nginx alone, the floor)':<44} at {args.rate:,.0f}/s: {floor.rate:7.1f}/s done, "
          f"p99 {floor.pct(99) * 1000:8.1f} ms")
    for f in figures:
        print(verdict(f, args.rate))
        if f.sustainable is not None:
            s = f.sustainable
            print(f"  {'':<44} at {s.scheduled / args.duration:,.0f}/s (70% of max): p50 {s.pct(50) * 1000:.1f} "
                  f"p99 {s.pct(99) * 1000:.1f} ms")
    for f in figures:
        print(f"  peak memory, MiB, under the load of {f.name.split(' (')[0]}: "
              + ", ".join(f"{name} {mib:.1f}" for name, mib in f.memory.items()))
    return 0


async def teardown(stack: Any, env: dict[str, str], tag: str, amqp_url: str, database_url: str) -> None:
    """Stop the stack, then remove its queues, exchanges and schemas; each step runs even if one fails,
    and what is left is named on stderr."""
    problems: list[str] = []

    async def step(what: str, action: Callable[[], Awaitable[object]], retry_for: float = 0) -> None:
        # Retried (each action is idempotent) while PostgreSQL or RabbitMQ restart for a moment.
        deadline = time.monotonic() + retry_for
        while True:
            try:
                async with asyncio.timeout(60):
                    await action()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    problems.append(f"{what}: {type(exc).__name__}: {exc}")
                    return
            await asyncio.sleep(2)

    await step("stopping the stack", stack.stop)

    await step("removing queues, exchanges and schemas", lambda: remove_test_objects(
        amqp_url, database_url,
        queues=[f"{tag}.{service}{dead}" for service in SERVICES for dead in ("", ".dead")],
        exchanges=[env["TAKTLINE_EXCHANGE"], env["TAKTLINE_DEAD_EXCHANGE"]],
        schemas=[f"{tag}_{service}" for service in SERVICES]), retry_for=60)
    for problem in problems:
        print(f"cleanup: {problem} (left: schemas {tag}_*, queues {tag}.*, exchanges {env['TAKTLINE_EXCHANGE']}*)",
              file=sys.stderr)


async def run_until_signalled(args: argparse.Namespace) -> int:
    """run(), cancelled by SIGINT or SIGTERM (so the teardown still runs)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return await run(args)
    except asyncio.CancelledError:
        print("interrupted: the stack was stopped and cleaned up (any leftovers are named above)", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000, help="open-loop requests/s (default 1000)")
    parser.add_argument("--duration", type=float, default=10, help="seconds per scenario (default 10)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per endpoint (default 3)")
    parser.add_argument("--drain", type=float, default=5,
                        help="open loop: seconds past the duration a late request may still be sent (default 5)")
    parser.add_argument("--connections", type=int, default=16, help="closed-loop connections (default 16)")
    parser.add_argument("--pool", type=int, default=64, help="open-loop connection pool (default 64)")
    parser.add_argument("--processes", type=int, default=1000)
    parser.add_argument("--machines", type=int, default=20)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:  # uvicorn[standard] brings it; plain asyncio only costs client CPU
        return asyncio.run(run_until_signalled(args))
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(run_until_signalled(args))


if __name__ == "__main__":
    sys.exit(main())
