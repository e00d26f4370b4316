"""Benchmark of the part pipeline against the raw ceiling, in one run. Targets: the pipeline
sustains at least half the raw ceiling, and p99 latency stays under 100 ms at 1,000 parts/s.

Raw ceiling (docs/decisions/0007): the pipeline's own rows and two broker hops with no
application code, in three OS processes as the services run. This process commits the
collector's outbox rows (pushes of 200) and relays them (aio-pika publish with confirms, then
published_at); a process stage consumes (quorum queue, single active consumer, prefetch
consumer_prefetch), writes inbox, part, machine and process updates and outbox rows with asyncpg
in one transaction per batch of up to consumer_batch_size (waiting consumer_batch_wait_ms),
acks the batch with one multiple-ack and relays; a maintenance stage consumes and writes inbox
and run-time timers. parts/s = N / (first collector commit -> last maintenance commit); latency
at 1,000 parts/s: 10 parts every 10 ms, stamp -> maintenance commit.

Raw, one hop (reference): messages the size of a telemetry.part_completed envelope published with
confirms (relay_batch_size in flight), consumed as above, one parts-shaped row per message.

Pipeline, as deployed: deploy/local/run_services.py's Stack (`taktline migrate`, three
`taktline serve` processes, nginx) on free ports, with its own schemas, exchanges and queues.
10 machines, each with a process (1 minute per cycle, 1 part per cycle) and a run-time
maintenance item, so an item's cycle_timer is the number of that machine's parts maintenance
has applied. Parts are pushed through nginx to the collector (POST
/api/collector/machines/{id}/events, PartCountAct rising by one per item, one request in flight
per machine); collector (outbox) -> RabbitMQ -> process (part row, process.part_recorded in
its outbox) -> RabbitMQ -> maintenance (timer), each step committed.
- Latency: a push of 10 items every 100 ms (100 parts/s, a rate the pipeline keeps up with),
  then every 10 ms (1,000 parts/s), machines in turn, each item stamped with time.time() as it
  is sent; 3 s warm-up, then 10 s and 20 s measured. A push that could not start before the end
  of the schedule is dropped, so a collector that falls behind shows as a lower achieved rate. A
  poller reads the 10 timers every 5 ms: latency = the first poll that shows a part's timer
  update - its stamp (late by at most the poll interval). Also from the rows: maintenance's inbox
  received_at for the process.part_recorded event (whose `finished` is the stamp) - stamp;
  received_at is taken before the batch's handlers run (one value per batch since the inbox
  insert became one statement per batch), so it is early by the batch's apply and commit time.
  Hop by hop from the outboxes' created_at (just before the commit) and published_at (the relay
  stamps it as it sends the round's messages, and commits it once every confirm is in; a round
  marks its rows with one value, hence the round counts) and the inboxes' received_at. A consumer
  may start on a message before the relay that sent it commits, so "-> maintenance inbox
  received_at" can be negative.
- Throughput: 20,000 parts in pushes of 200 items, as fast as the collector accepts them;
  parts/s = N / (first push -> maintenance has applied all), with when each stage finished.
- Peak memory: VmHWM of each service process after the 1,000 parts/s load and after the maximum.
CPU per process and phase from /proc (postgres = the backends of our connections; rabbitmq =
the whole broker; everything else = other work on the machine), as cores and as CPU ms per
part; consumer batch sizes from each service's /metrics.

Run with `.venv/bin/python bench/pipeline_bench.py` (or `make bench`); about 3 minutes. Needs
PostgreSQL and RabbitMQ (TAKTLINE_TEST_DATABASE_URL / TAKTLINE_TEST_AMQP_URL, else the local
defaults) and nginx. Every other TAKTLINE_* variable (TAKTLINE_RELAY_INTERVAL,
TAKTLINE_CONSUMER_BATCH_WAIT_MS, ...) reaches the services and the raw consumer. BENCH_PARTS and
BENCH_SECONDS shorten a run, BENCH_RAW_ONLY / BENCH_PIPELINE_ONLY run one side; BENCH_PYSPY_DIR=<dir>
records each service with py-spy (raw collapsed stacks) during every phase. Removes its schemas,
exchanges and queues, also on failure. Not a test: it prints the figures. The machine is shared:
compare "everything else" between runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import itertools
import json
import math
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aio_pika
import aiormq
import asyncpg
import httpx
from pamqp.commands import Basic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.auth import Authenticator
from shared.events import Envelope, PartCompleted, join_bodies
from shared.settings import SERVICES, Settings
from shared.testing.http1 import Connection
from shared.testing.infra import find_amqp_url, find_database_url
from shared.testing.stack import free_port, load_launcher
from tests.topology import remove_test_objects

MACHINES = 10
PARTS = int(os.environ.get("BENCH_PARTS", 20_000))  # throughput phase, pipeline and raw
PUSH_BATCH = 200  # items per HTTP push in the throughput phase
TICK = 0.010  # steady load: one push (or publish) every 10 ms ...
PER_TICK = 10  # ... of 10 parts: 1,000 parts/s
WARMUP = 3.0
STEADY = float(os.environ.get("BENCH_SECONDS", 20))
RAW_STEADY = min(STEADY, 10.0)
LOW_TICK = 0.100  # the low load: 10 parts every 100 ms = 100 parts/s, a rate the pipeline keeps up with
LOW_SECONDS = min(STEADY, 10.0)
POLL = 0.005  # timer poll interval (s)
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
ROUTING_KEY = PartCompleted.type
CLK_TCK = os.sysconf("SC_CLK_TCK")


def say(line: str = "") -> None:
    print(line, flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


def dist_ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = [v * 1000 for v in values]
    return (f"p50 {pct(ms, 50):6.1f}  p90 {pct(ms, 90):6.1f}  p99 {pct(ms, 99):6.1f}  "
            f"max {max(ms):6.1f} ms  (n={len(ms):,})")


def asyncpg_url(url: str) -> str:
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


async def paced(ticks: int, fire: Callable[[int], Awaitable[None]], tick: float = TICK) -> None:
    """Call `fire(k)` at start + k * tick (without waiting for the previous one), then await all."""
    start, tasks = time.monotonic(), []
    for k in range(ticks):
        delay = start + k * tick - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(k)))
    await asyncio.gather(*tasks)


async def until(check: Callable[[], Awaitable[bool] | bool], within: float, what: str,
                interval: float = 0.05) -> None:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result if isinstance(result, bool) else await result:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:.0f} s")
        await asyncio.sleep(interval)


def alive(task: asyncio.Task[None]) -> bool:
    """False while the task runs; raises what it died of."""
    if task.done():
        task.result()
        raise RuntimeError("raw consumer stopped")
    return False


def envelopes_of(body: bytes) -> list[dict[str, Any]]:
    """A message's envelopes as dicts (one alone, or a packed array), without validating them."""
    found = json.loads(body)
    return found if isinstance(found, list) else [found]


def envelope_body(machine_id: int, stamp: float, count: int) -> bytes:
    """A telemetry.part_completed envelope as the collector writes it (same fields, same size)."""
    return Envelope.wrap(PartCompleted(machine_id=machine_id, timestamp=stamp, part_count=count), "collector",
                         occurred_at=datetime.fromtimestamp(stamp, UTC)).to_bytes()


# --- CPU and memory from /proc ------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[str, int, float]]:
    """pid -> (comm, ppid, cpu seconds) for every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            raw = Path(f"/proc/{entry.name}/stat").read_text()
            comm = raw[raw.index("(") + 1:raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2:].split()
            table[int(entry.name)] = (comm, int(rest[1]), (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return table


def _machine_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _socket_ports(pid: int) -> set[int]:
    """Local TCP ports of a process's sockets (to tell our PostgreSQL backends from other clients')."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class CpuMeter:
    """CPU seconds per group of processes between start() and stop(), as cores busy. `postgres` is
    only the backends serving our processes; `rabbitmq` is the whole (shared) broker."""

    def __init__(self, services: dict[str, int]) -> None:
        self.services = services

    def _groups(self, table: dict[int, tuple[str, int, float]]) -> dict[str, dict[int, float]]:
        names = [*[n for n in SERVICES if n in self.services], *(["nginx"] if "nginx" in self.services else []),
                 "postgres", "rabbitmq", "bench"]
        groups: dict[str, dict[int, float]] = {name: {} for name in names}
        nginx = self.services.get("nginx")
        for pid, (comm, ppid, cpu) in table.items():
            for name, service_pid in self.services.items():
                if pid == service_pid or (name == "nginx" and ppid == nginx):
                    groups[name][pid] = cpu
            if comm == "postgres":
                groups["postgres"][pid] = cpu
            elif comm in ("beam.smp", "erl_child_setup", "epmd"):
                groups["rabbitmq"][pid] = cpu
        groups["bench"][os.getpid()] = table.get(os.getpid(), ("", 0, 0.0))[2]
        return groups

    def start(self) -> None:
        self._t0, self._jiffies0 = time.monotonic(), _machine_jiffies()
        self._before = self._groups(_proc_table())

    async def stop(self, db: asyncpg.Connection) -> dict[str, float]:
        """Cores busy per group, plus `everything else` and `machine`; also kept as .line."""
        seconds = time.monotonic() - self._t0
        after = self._groups(_proc_table())
        busy1, total1 = _machine_jiffies()
        ours = set().union(*(_socket_ports(pid) for pid in [*self.services.values(), os.getpid()]))
        backends = {r["pid"] for r in await db.fetch(
            "SELECT pid, client_port FROM pg_stat_activity WHERE client_port IS NOT NULL") if r["client_port"] in ours}
        after["postgres"] = {pid: cpu for pid, cpu in after["postgres"].items() if pid in backends}
        cores = {name: sum(cpu - self._before.get(name, {}).get(pid, 0.0) for pid, cpu in pids.items()) / seconds
                 for name, pids in after.items()}
        machine = (busy1 - self._jiffies0[0]) / max(total1 - self._jiffies0[1], 1) * (os.cpu_count() or 1)
        cores["everything else"] = max(machine - sum(cores.values()), 0.0)
        cores["machine"] = machine
        self.seconds = seconds
        self.line = (", ".join(f"{n} {c:.2f}" for n, c in cores.items() if n != "machine")
                     + f"; whole machine {machine:.2f} of {os.cpu_count()}")
        return cores


def cpu_per_part(cores: dict[str, float], seconds: float, parts: int) -> str:
    """CPU milliseconds per part of each of our groups (not `everything else`)."""
    ours = {n: c * seconds * 1000 / parts for n, c in cores.items() if n not in ("everything else", "machine")}
    return ", ".join(f"{n} {ms:.2f}" for n, ms in ours.items()) + f"; total {sum(ours.values()):.2f} ms"


def vm_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- Raw ceiling -----------------------------------------------------------------------------------


async def next_batch(incoming: asyncio.Queue[Any], size: int, wait: float,
                     weight: Callable[[Any], int] = lambda _: 1) -> list[Any]:
    """Up to `size` (by `weight`: events, as the services count): the first message, then what
    arrives within `wait` (the consumer's batch window)."""
    batch = [await incoming.get()]
    total = weight(batch[0])
    deadline = time.monotonic() + wait
    while total < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0 and incoming.empty():
            break
        try:
            async with asyncio.timeout(max(remaining, 0)):
                batch.append(await incoming.get())
        except TimeoutError:
            break
        total += weight(batch[-1])
    return batch


async def raw_steady(send: Callable[[list[bytes]], Awaitable[None]], sink: Any, stopped: Callable[[], bool],
                     what: str) -> list[float]:
    """A raw run's steady phase: PER_TICK parts every TICK for WARMUP + RAW_STEADY s, sent by `send`;
    the stamp -> commit latencies (`sink.latencies`) of the parts stamped in the measured window."""
    sink.latencies.clear()
    sink.committed = 0
    begun = time.time()

    async def tick(k: int) -> None:
        now = time.time()
        await send([envelope_body(1 + (k * PER_TICK + j) % MACHINES, now + j * 1e-6, k) for j in range(PER_TICK)])

    ticks = int((WARMUP + RAW_STEADY) / TICK)
    await paced(ticks, tick)
    await until(lambda: sink.committed >= ticks * PER_TICK or stopped(), 60, what)
    window = (begun + WARMUP, begun + WARMUP + RAW_STEADY)
    return [at - stamp for stamp, at in sink.latencies if window[0] <= stamp < window[1]]


class RawSink:
    """Consume -> insert the rows in one transaction per batch -> ack; the consumer loop without the app."""

    def __init__(self, conn: asyncpg.Connection, schema: str, batch_size: int, batch_wait: float) -> None:
        self.conn = conn
        self.sql = (f'INSERT INTO "{schema}".parts (machine_id, process_id, program_id, count, cycles, finished, '
                    "cycle_time, tool_locations, variables) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()
        self.committed = 0
        self.last_commit = 0.0
        self.latencies: list[tuple[float, float]] = []  # (stamp, committed at)
        self.batches = 0

    async def receive(self, message: Any) -> None:
        self.incoming.put_nowait(message)

    async def run(self) -> None:
        while True:
            batch = await next_batch(self.incoming, self.batch_size, self.batch_wait)
            rows, stamps = [], []
            for message in batch:
                data = json.loads(message.body)["data"]
                stamps.append(data["timestamp"])
                rows.append((data["machine_id"], data["machine_id"], None, data["increment"], 1,
                             datetime.fromtimestamp(data["timestamp"], UTC), None, "[]", "{}"))
            async with self.conn.transaction():
                await self.conn.executemany(self.sql, rows)
            now = time.time()
            await batch[-1].ack(multiple=True)
            self.committed += len(batch)
            self.batches += 1
            self.last_commit = now
            self.latencies.extend((stamp, now) for stamp in stamps)


async def raw_ceiling(db_url: str, amqp_url: str, settings: Settings) -> tuple[float, list[float], float]:
    """(parts/s, latencies at 1,000 msg/s in the measured window, achieved rate)."""
    tag = uuid.uuid4().hex[:8]
    schema, exchange_name, queue_name = f"bench_raw_{tag}", f"taktline.bench.{tag}", f"bench{tag}.raw"
    db = await asyncpg.connect(db_url)
    publisher = await aio_pika.connect(amqp_url)
    consumer = await aio_pika.connect(amqp_url)
    worker: asyncio.Task[None] | None = None
    try:
        await db.execute(f'CREATE SCHEMA "{schema}"')
        await db.execute(f'''CREATE TABLE "{schema}".parts (
            id serial PRIMARY KEY, machine_id integer NOT NULL, process_id integer, program_id integer,
            count integer NOT NULL, cycles integer NOT NULL, finished timestamptz NOT NULL, cycle_time float8,
            tool_locations jsonb NOT NULL, variables jsonb NOT NULL)''')
        for columns in ("machine_id, finished", "process_id, finished", "program_id, finished"):
            await db.execute(f'CREATE INDEX ON "{schema}".parts ({columns})')
        pub_channel = await publisher.channel(publisher_confirms=True)
        await pub_channel.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        sub_channel = await consumer.channel()
        await sub_channel.set_qos(prefetch_count=settings.consumer_prefetch)
        queue = await sub_channel.declare_queue(queue_name, durable=True, arguments={
            "x-queue-type": "quorum", "x-single-active-consumer": True,
            "x-delivery-limit": settings.consumer_delivery_limit})
        await queue.bind(exchange_name, routing_key="telemetry.#")
        sink = RawSink(db, schema, settings.consumer_batch_size, settings.consumer_batch_wait_ms / 1000)
        worker = asyncio.create_task(sink.run())
        await queue.consume(sink.receive)

        def message(body: bytes) -> tuple[str, bytes]:
            return str(uuid.uuid4()), body

        async def publish(messages: list[tuple[str, bytes]]) -> None:
            await publish_confirmed(pub_channel, exchange_name, ROUTING_KEY, messages)

        bodies = [envelope_body(1 + n % MACHINES, 1.7e9 + n, n) for n in range(PARTS)]
        say(f"  message body {len(bodies[-1])} bytes (a telemetry.part_completed envelope)")
        cpu = CpuMeter({})
        cpu.start()
        started = time.time()
        for first in range(0, PARTS, settings.relay_batch_size):
            await publish([message(b) for b in bodies[first:first + settings.relay_batch_size]])
        confirmed = time.time() - started
        await until(lambda: sink.committed >= PARTS or alive(worker), 120, "raw consumer")
        elapsed = sink.last_commit - started
        rate = PARTS / elapsed
        cores = await cpu.stop(db)
        say(f"raw: {PARTS:,} published and confirmed in {confirmed:.2f} s, all committed in {elapsed:.2f} s "
            f"= {rate:,.0f} parts/s ({sink.batches} transactions, {PARTS / sink.batches:.0f} rows each)")
        say(f"  CPU (cores): {cpu.line}")
        say(f"  CPU ms per part: {cpu_per_part(cores, cpu.seconds, PARTS)}")

        async def send(bodies: list[bytes]) -> None:
            await publish([message(b) for b in bodies])

        latencies = await raw_steady(send, sink, lambda: alive(worker), "raw consumer (steady)")
        return rate, latencies, len(latencies) / RAW_STEADY
    finally:
        if worker:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await worker
        for connection in (consumer, publisher):
            with contextlib.suppress(Exception):
                await connection.close()
        with contextlib.suppress(Exception):
            await db.close()
        await clean_up(db_url, amqp_url, schemas=[schema], queues=[queue_name], exchanges=[exchange_name])


# --- the raw ceiling in the pipeline's shape ----------------------------------------------------

RAW_SHAPE_DDL = """
CREATE SCHEMA {s};
CREATE TABLE {s}.c_outbox (id bigserial PRIMARY KEY, event_id varchar(36) UNIQUE NOT NULL, type varchar(100) NOT NULL,
    body text NOT NULL, created_at timestamptz NOT NULL, published_at timestamptz, attempts int NOT NULL DEFAULT 0,
    last_error text);
CREATE INDEX ON {s}.c_outbox (id) WHERE published_at IS NULL;
CREATE INDEX ON {s}.c_outbox (published_at) WHERE published_at IS NOT NULL;
CREATE TABLE {s}.p_inbox (message_id varchar(64) PRIMARY KEY, type varchar(100) NOT NULL,
    received_at timestamptz NOT NULL);
CREATE INDEX ON {s}.p_inbox (received_at);
CREATE TABLE {s}.p_machines (id int PRIMARY KEY, last_part_at timestamptz, last_seen timestamptz,
    tools_used jsonb NOT NULL DEFAULT '[]');
CREATE TABLE {s}.p_processes (id int PRIMARY KEY, machine_id int NOT NULL, last_cycle_finished timestamptz,
    last_cycle_program_id int);
CREATE TABLE {s}.p_parts (id serial PRIMARY KEY, machine_id integer NOT NULL, process_id integer, program_id integer,
    count integer NOT NULL, cycles integer NOT NULL, finished timestamptz NOT NULL, cycle_time float8,
    tool_locations jsonb NOT NULL, variables jsonb NOT NULL);
CREATE INDEX ON {s}.p_parts (machine_id, finished);
CREATE INDEX ON {s}.p_parts (process_id, finished);
CREATE INDEX ON {s}.p_parts (program_id, finished);
CREATE TABLE {s}.p_outbox (LIKE {s}.c_outbox INCLUDING ALL);
CREATE TABLE {s}.m_inbox (LIKE {s}.p_inbox INCLUDING ALL);
CREATE TABLE {s}.m_items (id int PRIMARY KEY, machine_id int NOT NULL, cycle_timer float8 NOT NULL DEFAULT 0);
CREATE INDEX ON {s}.m_items (machine_id);
"""


class RawRelay:
    """Publishes committed outbox rows with confirms, then marks them published: the relay's
    database and broker work, fed in memory instead of by polling."""

    def __init__(self, conn: asyncpg.Connection, table: str, channel: Any, exchange: str, routing_key: str,
                 per_message: int) -> None:
        self.conn, self.table, self.channel = conn, table, channel
        self.exchange, self.routing_key, self.per_message = exchange, routing_key, per_message
        self.pending: asyncio.Queue[list[tuple[int, str, bytes]]] = asyncio.Queue()

    async def run(self) -> None:
        while True:
            rows = [*await self.pending.get()]
            while not self.pending.empty():
                rows += self.pending.get_nowait()
            # Packed as the services pack them (decision 0011): up to per_message events a message.
            chunks = [rows[i:i + self.per_message] for i in range(0, len(rows), self.per_message)]
            await publish_confirmed(self.channel, self.exchange, self.routing_key,
                                    [(chunk[0][1], join_bodies([body for _, _, body in chunk])) for chunk in chunks])
            await self.conn.execute(f"UPDATE {self.table} SET published_at = now() WHERE id = ANY($1::bigint[])",
                                    [row_id for row_id, _, _ in rows])


async def publish_confirmed(channel: Any, exchange: str, routing_key: str, messages: list[tuple[str, bytes]]) -> None:
    """aio-pika publishing with confirms in its fastest form, the one RabbitMQTransport.publish uses:
    on the channel's aiormq channel, every message in flight (wait=False), confirms awaited together."""
    underlay = await channel.get_underlay_channel()
    results = await asyncio.gather(*(underlay.basic_publish(
        body, exchange=exchange, routing_key=routing_key, mandatory=False, wait=False,
        properties=Basic.Properties(content_type="application/json", delivery_mode=2, message_id=message_id,
                                    message_type=routing_key, headers={"producer": "bench"}))
        for message_id, body in messages))
    if not all(isinstance(r, aiormq.spec.Basic.Ack) for r in results):
        raise RuntimeError("a publish was not confirmed")


class RawStage:
    """A consumer without the app: a batch of messages -> its rows in one transaction -> (its outbox
    rows to the relay) -> one multiple-ack; `report(n, committed_at, stamps)` after each commit."""

    def __init__(self, conn: asyncpg.Connection, apply: Callable[[asyncpg.Connection, list[Any]], Awaitable[Any]],
                 batch_size: int, batch_wait: float, relay: RawRelay | None = None,
                 report: Callable[[int, float, list[float]], None] | None = None) -> None:
        self.conn, self.apply, self.relay, self.report = conn, apply, relay, report
        self.batch_size, self.batch_wait = batch_size, batch_wait
        self.incoming: asyncio.Queue[Any] = asyncio.Queue()

    async def receive(self, message: Any) -> None:
        self.incoming.put_nowait((message, envelopes_of(message.body)))

    async def run(self) -> None:
        while True:
            # Up to batch_size events a transaction, a message's events together, as the services do.
            batch = await next_batch(self.incoming, self.batch_size, self.batch_wait, weight=lambda m: len(m[1]))
            data = [e["data"] | {"_id": e["id"]} for _, envelopes in batch for e in envelopes]
            async with self.conn.transaction():
                outbox = await self.apply(self.conn, data)
            now = time.time()
            if self.relay is not None and outbox:
                self.relay.pending.put_nowait(outbox)
            await batch[-1][0].ack(multiple=True)
            if self.report is not None:
                self.report(len(data), now, [d["timestamp"] for d in data])


async def raw_process_apply(s: str, conn: asyncpg.Connection,
                            data: list[dict[str, Any]]) -> list[tuple[int, str, bytes]]:
    """The process service's rows for a batch: inbox, parts, machine and process updates, outbox."""
    now = datetime.now(UTC)
    await conn.executemany(f"INSERT INTO {s}.p_inbox (message_id, type, received_at) VALUES ($1, $2, $3)",
                           [(d["_id"], ROUTING_KEY, now) for d in data])
    finished = [datetime.fromtimestamp(d["timestamp"], UTC) for d in data]
    await conn.executemany(
        f"INSERT INTO {s}.p_parts (machine_id, process_id, program_id, count, cycles, finished, cycle_time, "
        "tool_locations, variables) VALUES ($1, $1, NULL, $2, 1, $3, 60, '[]', '{}')",
        [(d["machine_id"], d["increment"], f) for d, f in zip(data, finished, strict=True)])
    latest = {d["machine_id"]: f for d, f in zip(data, finished, strict=True)}
    await conn.executemany(f"UPDATE {s}.p_machines SET last_part_at = $2, last_seen = $2, tools_used = '[]' "
                           "WHERE id = $1", list(latest.items()))
    await conn.executemany(f"UPDATE {s}.p_processes SET last_cycle_finished = $2, last_cycle_program_id = NULL "
                           "WHERE id = $1", list(latest.items()))
    events = [(str(uuid.uuid4()), envelope_body(d["machine_id"], d["timestamp"], d["increment"])) for d in data]
    ids = await conn.fetch(
        f"INSERT INTO {s}.p_outbox (event_id, type, body, created_at) "
        "SELECT e, 'process.part_recorded', b, $3 FROM unnest($1::text[], $2::text[]) AS t(e, b) RETURNING id",
        [e for e, _ in events], [b.decode() for _, b in events], now)
    return [(row["id"], e, b) for row, (e, b) in zip(ids, events, strict=True)]


async def raw_maintenance_apply(s: str, conn: asyncpg.Connection, data: list[dict[str, Any]]) -> None:
    """The maintenance service's rows for a batch: inbox and the run-time timers."""
    now = datetime.now(UTC)
    await conn.executemany(f"INSERT INTO {s}.m_inbox (message_id, type, received_at) VALUES ($1, $2, $3)",
                           [(d["_id"], "process.part_recorded", now) for d in data])
    minutes = collections.Counter[int]()
    for d in data:
        minutes[d["machine_id"]] += 1.0
    await conn.executemany(f"UPDATE {s}.m_items SET cycle_timer = cycle_timer + $2 WHERE machine_id = $1",
                           list(minutes.items()))


@dataclass(frozen=True)
class RawStageSpec:
    role: str  # "process" (consumer + relay) or "maintenance" (consumer)
    db_url: str
    amqp_url: str
    schema: str
    exchange: str
    queue: str
    batch_size: int
    batch_wait: float
    prefetch: int
    per_message: int


def raw_stage_main(spec: RawStageSpec, report: Any) -> None:
    """Entry point of a raw stage's own OS process, as each service is one: reports each commit
    (and "ready" once consuming) on the `report` pipe until the parent terminates it."""
    asyncio.run(_raw_stage(spec, report))


async def _raw_stage(spec: RawStageSpec, report: Any) -> None:
    conns = [await asyncpg.connect(spec.db_url) for _ in range(2 if spec.role == "process" else 1)]
    amqp = await aio_pika.connect(spec.amqp_url)
    channel = await amqp.channel()
    await channel.set_qos(prefetch_count=spec.prefetch)
    queue = await channel.get_queue(spec.queue, ensure=False)
    relay = None
    if spec.role == "process":
        pub = await amqp.channel(publisher_confirms=True)
        relay = RawRelay(conns[1], f"{spec.schema}.p_outbox", pub, spec.exchange, "process.part_recorded",
                         spec.per_message)
        apply = functools.partial(raw_process_apply, spec.schema)
    else:
        apply = functools.partial(raw_maintenance_apply, spec.schema)  # type: ignore[arg-type]
    stage = RawStage(conns[0], apply, spec.batch_size, spec.batch_wait, relay,
                     report=(lambda n, at, stamps: report.send((n, at, stamps))) if relay is None else None)
    tasks = [asyncio.create_task(stage.run()), *([asyncio.create_task(relay.run())] if relay else [])]
    await queue.consume(stage.receive)
    report.send("ready")
    await asyncio.gather(*tasks)


class RawReports:
    """The maintenance stage's commits, read from its pipe on this event loop."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self.ready = asyncio.Event()
        self.committed = 0
        self.last_commit = 0.0
        self.latencies: list[tuple[float, float]] = []  # (stamp, committed at)
        asyncio.get_running_loop().add_reader(pipe.fileno(), self._read)

    def _read(self) -> None:
        try:
            while self.pipe.poll():
                item = self.pipe.recv()
                if item == "ready":
                    self.ready.set()
                    continue
                n, at, stamps = item
                self.committed += n
                self.last_commit = at
                self.latencies.extend((stamp, at) for stamp in stamps)
        except EOFError:  # the stage died: the caller's until() sees it via `failed`
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_reader(self.pipe.fileno())


async def raw_pipeline_ceiling(db_url: str, amqp_url: str, settings: Settings) -> tuple[float, list[float], float]:
    """The raw ceiling in the pipeline's shape: the same two broker hops (publish with confirms,
    consume, ack) and the same rows, written by plain asyncpg statements with no application code,
    in three OS processes as the services are: this one commits the collector's outbox rows and
    relays them; a process stage (own process) consumes, writes inbox, part, machine and process
    updates and outbox rows in one transaction per batch, and relays; a maintenance stage (own
    process) consumes and writes inbox and run-time timers. (parts/s, latencies at 1,000/s from
    the collector's commit to the maintenance commit, achieved rate)."""
    tag = uuid.uuid4().hex[:8]
    schema, exchange_name = f"bench_rawp_{tag}", f"taktline.bench.{tag}"
    queues = [f"bench{tag}.process", f"bench{tag}.maintenance"]
    conns = [await asyncpg.connect(db_url) for _ in range(2)]  # collector commits, collector relay
    amqp = await aio_pika.connect(amqp_url)
    tasks: list[asyncio.Task[None]] = []
    stages: list[multiprocessing.process.BaseProcess] = []
    reports: list[RawReports] = []
    try:
        s = f'"{schema}"'
        await conns[0].execute(RAW_SHAPE_DDL.format(s=s))
        await conns[0].executemany(f"INSERT INTO {s}.p_machines (id) VALUES ($1)", [(m,) for m in range(1, 11)])
        await conns[0].executemany(f"INSERT INTO {s}.p_processes (id, machine_id) VALUES ($1, $1)",
                                   [(m,) for m in range(1, 11)])
        await conns[0].executemany(f"INSERT INTO {s}.m_items (id, machine_id) VALUES ($1, $1)",
                                   [(m,) for m in range(1, 11)])
        pub = await amqp.channel(publisher_confirms=True)
        await pub.declare_exchange(exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        for name, key in zip(queues, (ROUTING_KEY, "process.part_recorded"), strict=True):
            queue = await pub.declare_queue(name, durable=True, arguments={
                "x-queue-type": "quorum", "x-single-active-consumer": True,
                "x-delivery-limit": settings.consumer_delivery_limit})
            await queue.bind(exchange_name, routing_key=key)
        collector_relay = RawRelay(conns[1], f"{s}.c_outbox", pub, exchange_name, ROUTING_KEY,
                                   settings.events_per_message)
        tasks = [asyncio.create_task(collector_relay.run())]

        spawn = multiprocessing.get_context("spawn")
        pipes = []
        for role, queue_name in zip(("process", "maintenance"), queues, strict=True):
            ours, theirs = spawn.Pipe(duplex=False)
            spec = RawStageSpec(role, db_url, amqp_url, s, exchange_name, queue_name, settings.consumer_batch_size,
                                settings.consumer_batch_wait_ms / 1000, settings.consumer_prefetch,
                                settings.events_per_message)
            stage = spawn.Process(target=raw_stage_main, args=(spec, theirs), name=f"raw-{role}", daemon=True)
            stage.start()
            theirs.close()
            stages.append(stage)
            pipes.append(ours)
        reports = [RawReports(pipe) for pipe in pipes]  # the process stage reports only "ready"
        async with asyncio.timeout(60):
            await asyncio.gather(*(r.ready.wait() for r in reports))
        done = reports[1]

        collecting = asyncio.Lock()  # one connection: ticks that overlap take turns

        async def collect(bodies: list[bytes]) -> None:
            """The collector's commit: outbox rows; then its relay publishes them."""
            event_ids = [str(uuid.uuid4()) for _ in bodies]
            async with collecting:
                ids = await conns[0].fetch(
                    f"INSERT INTO {s}.c_outbox (event_id, type, body, created_at) "
                    "SELECT e, $3, b, now() FROM unnest($1::text[], $2::text[]) AS t(e, b) RETURNING id",
                    event_ids, [b.decode() for b in bodies], ROUTING_KEY)
            collector_relay.pending.put_nowait(
                [(r["id"], e, b) for r, e, b in zip(ids, event_ids, bodies, strict=True)])

        def failed() -> bool:
            return any(alive(t) for t in tasks) or any(not p.is_alive() for p in stages)

        bodies = [envelope_body(1 + n % MACHINES, 1.7e9 + n, n) for n in range(PARTS)]
        cpu = CpuMeter({"process": stages[0].pid or 0, "maintenance": stages[1].pid or 0})
        cpu.start()
        started = time.time()
        for first in range(0, PARTS, PUSH_BATCH):
            await collect(bodies[first:first + PUSH_BATCH])
        await until(lambda: done.committed >= PARTS or failed(), 180, "raw pipeline")
        if failed():
            raise RuntimeError(f"raw pipeline stage died: {[(p.name, p.exitcode) for p in stages]}")
        elapsed = done.last_commit - started
        rate = PARTS / elapsed
        cores = await cpu.stop(conns[0])
        say(f"raw, the pipeline's shape: {PARTS:,} parts through both hops in {elapsed:.2f} s = {rate:,.0f} parts/s")
        say(f"  CPU (cores): {cpu.line}   (bench = this process: collector commits and relay)")
        say(f"  CPU ms per part: {cpu_per_part(cores, cpu.seconds, PARTS)}")

        latencies = await raw_steady(collect, done, failed, "raw pipeline (steady)")
        return rate, latencies, len(latencies) / RAW_STEADY
    finally:
        for report in reports:
            report.close()
        for stage in stages:
            stage.terminate()
            stage.join(10)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            await amqp.close()
        for conn in conns:
            with contextlib.suppress(Exception):
                await conn.close()
        await clean_up(db_url, amqp_url, schemas=[schema], queues=queues, exchanges=[exchange_name])


async def clean_up(db_url: str, amqp_url: str, **names: list[str]) -> None:
    """Drop what a part created, retrying while PostgreSQL or RabbitMQ restart; a failure is
    reported, not raised (the figures stand)."""
    try:
        await remove_test_objects(amqp_url, db_url, within=90, **names)
    except Exception as exc:
        print(f"clean-up incomplete ({exc.__class__.__name__}: {exc}); of {names}", file=sys.stderr)


# --- Pipeline ------------------------------------------------------------------------------------


@dataclass
class Feed:
    """One machine: what was pushed (stamps in order) and when each part's timer update was seen."""

    machine_id: int
    item_id: int
    conn: Connection  # its own keep-alive connection to the gateway, as an edge adapter has
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    count: int = 0  # the PartCountAct last pushed (0 = the baseline)
    sent: list[float] = field(default_factory=list)
    seen: list[float] = field(default_factory=list)


class Pipeline:
    def __init__(self, stack: Any, client: httpx.AsyncClient, db: asyncpg.Connection, prefix: str,
                 tag: str, machine_token: str) -> None:
        self.stack = stack
        self.client = client
        self.db = db
        self.tag = tag
        self.schema = {name: f'"{prefix}{name}"' for name in SERVICES}
        self.machine_headers = {"Authorization": f"Bearer {machine_token}"}
        self.push_head = (f"POST /api/collector/machines/{{machine}}/events HTTP/1.1\r\n"
                          f"Host: 127.0.0.1:{stack.gateway_port}\r\nAuthorization: Bearer {machine_token}\r\n"
                          "Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
        self.feeds: list[Feed] = []
        self.push_seconds: list[tuple[float, float]] = []  # (sent at, request duration)

    async def ok(self, method: str, url: str, status: int = 200, **kw: Any) -> Any:
        response = await self.client.request(method, url, **kw)
        if response.status_code != status:
            raise RuntimeError(f"{method} {url}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    async def setup(self) -> None:
        for n in range(MACHINES):
            machine = (await self.ok("PUT", "/api/machines/", 201, json={"name": f"Bench VMC {n}"}))["id"]
            process = await self.ok("PUT", "/api/processes/", 201, json={
                "machine_id": machine, "name": "Op 10", "time_per_cycle": 1.0, "parts_per_cycle": 1})
            await self.ok("POST", f"/api/processes/{process['id']}/changeover/{process['id']}", params={"planned": 1})
            item = None
            deadline = time.monotonic() + 30
            while item is None:
                response = await self.client.put("/api/maintenance/items/", json={
                    "item_type": "task", "name": f"Way lube {n}", "machine_id": machine, "schedule_mode": 1,
                    "timer_interval": 1_000_000.0, "warning_interval": 0.0})
                if response.status_code == 201:
                    item = response.json()["id"]
                elif response.status_code == 400 and "machine" in response.text and time.monotonic() < deadline:
                    await asyncio.sleep(0.1)  # maintenance has not heard machine.upserted yet
                else:
                    raise RuntimeError(f"PUT /api/maintenance/items/: {response.status_code} {response.text[:500]}")
            self.feeds.append(Feed(machine, item, Connection("127.0.0.1", self.stack.gateway_port)))
        for feed in self.feeds:  # the first count is a baseline, not a part
            await self.ok("POST", f"/api/collector/machines/{feed.machine_id}/events", headers=self.machine_headers,
                          json=[{"id": f"{self.tag}-0", "timestamp": time.time(), "key": "PartCountAct",
                                 "value": 0}])

    async def push(self, feed: Feed, n: int, deadline: float | None = None) -> None:
        async with feed.lock:  # one request per machine at a time: a machine reports in order
            if deadline is not None and time.monotonic() > deadline:
                return  # the collector fell behind the schedule: this push is dropped, not sent late
            now = time.time()
            items = [{"id": f"{self.tag}-{feed.count + j + 1}", "timestamp": now + j * 1e-6, "key": "PartCountAct",
                      "value": feed.count + j + 1} for j in range(n)]
            feed.count += n
            feed.sent.extend(item["timestamp"] for item in items)
            # The load generator shares the machine: prepared bytes on a lean client (shared/testing/http1)
            # leave the services the CPU that httpx would take.
            body = json.dumps(items).encode()
            began = time.perf_counter()
            status, answer = await feed.conn.request(
                self.push_head.format(machine=feed.machine_id, length=len(body)).encode() + body)
            self.push_seconds.append((now, time.perf_counter() - began))
            if status != 200:
                raise RuntimeError(f"push to machine {feed.machine_id}: {status} {answer[:500]!r}")
            result = json.loads(answer)
            if result["accepted"] != n or result["events"] != n or result["rejected"]:
                raise RuntimeError(f"push to machine {feed.machine_id}: {result}")

    async def watch_timers(self, db_url: str) -> None:
        """Every POLL s: each machine's cycle_timer = parts applied; note when each part first shows."""
        by_item = {feed.item_id: feed for feed in self.feeds}
        query = f"SELECT id, cycle_timer FROM {self.schema['maintenance']}.items WHERE id = ANY($1::int[])"
        ids = list(by_item)
        db: asyncpg.Connection | None = None
        while True:
            try:
                db = db or await asyncpg.connect(db_url, timeout=5)  # its own connection: it polls all along
                rows = await db.fetch(query, ids)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):  # PostgreSQL restarting
                if db is not None:
                    with contextlib.suppress(Exception):
                        await db.close()
                db = None
                await asyncio.sleep(0.5)
                continue
            except asyncio.CancelledError:
                if db is not None:
                    with contextlib.suppress(Exception):
                        await db.close()
                raise
            now = time.time()
            for row in rows:
                feed = by_item[row["id"]]
                applied = round(row["cycle_timer"] or 0)
                while len(feed.seen) < applied:
                    feed.seen.append(now)
            await asyncio.sleep(POLL)

    async def close(self) -> None:
        for feed in self.feeds:
            await feed.conn.close()

    def drained(self) -> bool:
        return all(len(feed.seen) >= feed.count for feed in self.feeds)

    async def drain(self, within: float, what: str) -> None:
        try:
            await until(self.drained, within, what, interval=POLL)
        except TimeoutError:
            c, p = self.schema["collector"], self.schema["process"]
            unsent = [await self.db.fetchval(f"SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL")
                      for schema in (c, p)]
            parts = await self.db.fetchval(f"SELECT count(*) FROM {p}.parts")
            print(f"{what}: pushed {sum(f.count for f in self.feeds):,}, process has {parts:,} parts, "
                  f"maintenance timers show {sum(len(f.seen) for f in self.feeds):,}; unsent outbox rows: "
                  f"collector {unsent[0]:,}, process {unsent[1]:,}", file=sys.stderr)
            raise

    async def consumer_batches(self) -> dict[str, tuple[float, float]]:
        """service -> (sum, count) of taktline_consumer_batch_size, from the service's own /metrics."""
        found = {}
        for name in SERVICES:
            text = (await self.client.get(f"http://127.0.0.1:{self.stack.ports[name]}/metrics")).text
            values = [re.search(rf'^taktline_consumer_batch_size_{kind}{{service="{name}"}} (\S+)$', text, re.M)
                      for kind in ("sum", "count")]
            found[name] = tuple(float(m.group(1)) if m else 0.0 for m in values)  # type: ignore[assignment]
        return found

    @staticmethod
    def batch_line(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> str:
        parts = []
        for name in ("process", "maintenance"):
            total, count = (after[name][0] - before[name][0]), (after[name][1] - before[name][1])
            parts.append(f"{name} {count:,.0f} transactions of {total / count if count else 0:.1f} messages")
        return "consumer batches: " + ", ".join(parts)

    async def rows_since(self, since: float) -> dict[str, Any]:
        """Outbox and inbox rows written since `since`, keyed for joining part by part."""
        at = datetime.fromtimestamp(since, UTC)
        c, p, m = self.schema["collector"], self.schema["process"], self.schema["maintenance"]
        out: dict[str, Any] = {}
        out["telemetry"] = {
            (d["machine_id"], d["timestamp"]): (r["event_id"], r["created_at"].timestamp(),
                                                r["published_at"].timestamp() if r["published_at"] else None)
            for r in await self.db.fetch(f"SELECT event_id, body, created_at, published_at FROM {c}.outbox "
                                         "WHERE type = $1 AND created_at >= $2", ROUTING_KEY, at)
            for d in [json.loads(r["body"])["data"]]}
        out["recorded"] = {
            (d["machine_id"], d["finished"]): (r["event_id"], r["created_at"].timestamp(),
                                               r["published_at"].timestamp() if r["published_at"] else None)
            for r in await self.db.fetch(f"SELECT event_id, body, created_at, published_at FROM {p}.outbox "
                                         "WHERE type = 'process.part_recorded' AND created_at >= $1", at)
            for d in [json.loads(r["body"])["data"]]}
        for name, schema in (("process_inbox", p), ("maintenance_inbox", m)):
            out[name] = {r["message_id"]: r["received_at"].timestamp() for r in await self.db.fetch(
                f"SELECT message_id, received_at FROM {schema}.inbox WHERE received_at >= $1", at)}
        return out

    def parts_between(self, start: float, end: float) -> Iterable[tuple[Feed, int]]:
        for feed in self.feeds:
            for index, stamp in enumerate(feed.sent):
                if start <= stamp < end:
                    yield feed, index


class Profiler:
    """Optional py-spy recordings of the services (BENCH_PYSPY_DIR), stopped with SIGINT."""

    def __init__(self, pids: dict[str, int]) -> None:
        folder = os.environ.get("BENCH_PYSPY_DIR")
        self.folder = Path(folder) if folder else None
        self.pids = pids
        self.running: list[asyncio.subprocess.Process] = []

    async def start(self, phase: str) -> None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if self.folder is None or not os.access(spy, os.X_OK):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        phase = re.sub(r"\W+", "-", phase).strip("-")
        for name in SERVICES:
            self.running.append(await asyncio.create_subprocess_exec(
                spy, "record", "--pid", str(self.pids[name]), "--rate", "200", "--format", "raw", "--nonblocking",
                "-o", str(self.folder / f"{phase}-{name}.txt"),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL))

    async def stop(self) -> None:
        for spy in self.running:
            with contextlib.suppress(ProcessLookupError):
                spy.send_signal(signal.SIGINT)
        for spy in self.running:
            try:
                async with asyncio.timeout(20):
                    await spy.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    spy.kill()
                await spy.wait()
        self.running.clear()


HOPS = ("stamp -> collector outbox created_at", "-> collector outbox published_at", "-> process inbox received_at",
        "-> process outbox created_at", "-> process outbox published_at", "-> maintenance inbox received_at",
        "-> timer visible (poll)")


def relay_rounds(published: list[float]) -> str:
    """A relay round marks its rows with one published_at: how many rounds, how big, how far apart."""
    rounds = collections.Counter(published)
    if not rounds:
        return "no rounds"
    times = sorted(rounds)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return (f"{len(rounds):,} rounds of {len(published) / len(rounds):.0f} rows (max {max(rounds.values())}), "
            f"{pct(gaps, 50) * 1000 if gaps else 0:.0f} ms apart (p50)")


async def paced_phase(pipe: Pipeline, cpu: CpuMeter, profiler: Profiler, *, label: str, per_tick: int,
                      tick: float, seconds: float) -> tuple[list[float], float]:
    """A push of `per_tick` items every `tick` s (machines in turn); pushes that would start after the
    schedule's end are dropped, so an overloaded collector shows as a lower achieved rate. Returns the
    polled latencies of the parts stamped in the measured window and the achieved input rate."""
    batches = await pipe.consumer_batches()
    await profiler.start(label)
    begun, schedule_end = time.time(), time.monotonic() + WARMUP + seconds + 0.5
    cpu.start()

    async def fire(k: int) -> None:
        await pipe.push(pipe.feeds[k % MACHINES], per_tick, deadline=schedule_end)

    await paced(int((WARMUP + seconds) / tick), fire, tick)
    sent_for = time.time() - begun
    await pipe.drain(300, f"pipeline drain ({label})")
    cores = await cpu.stop(pipe.db)
    await profiler.stop()
    window = (begun + WARMUP, begun + WARMUP + seconds)
    measured = list(pipe.parts_between(*window))
    achieved = len(measured) / seconds
    polled = [feed.seen[i] - feed.sent[i] for feed, i in measured]
    say(f"{label}: {per_tick} items every {tick * 1000:.0f} ms for {seconds:.0f} s after {WARMUP:.0f} s warm-up; "
        f"{len(measured):,} parts stamped in the window = {achieved:,.0f} parts/s (sending took {sent_for:.1f} s)")
    pushes = [d for sent, d in pipe.push_seconds if window[0] <= sent < window[1]]
    say(f"  HTTP push ({per_tick} items) round trip{' ' * (20 - len(str(per_tick)))}{dist_ms(pushes)}")
    say(f"  telemetry -> timer visible (polled)      {dist_ms(polled)}")
    if os.environ.get("BENCH_TIMELINE"):  # where in the window the tail sits: a burst or a steady queue
        seconds_of: dict[int, list[float]] = {}
        for feed, i in measured:
            seconds_of.setdefault(int(feed.sent[i] - window[0]), []).append(feed.seen[i] - feed.sent[i])
        say("  by second: " + "  ".join(f"{s}:{pct(v, 50) * 1000:.0f}/{max(v) * 1000:.0f}"
                                         for s, v in sorted(seconds_of.items())))

    rows = await pipe.rows_since(begun - 1)
    hops: dict[str, list[float]] = {name: [] for name in HOPS}
    inbox_latency: list[float] = []
    for feed, index in measured:
        stamp = feed.sent[index]
        telemetry = rows["telemetry"].get((feed.machine_id, stamp))
        recorded = rows["recorded"].get((feed.machine_id, stamp))
        if telemetry is None or recorded is None:
            continue
        process_in = rows["process_inbox"].get(telemetry[0])
        maintenance_in = rows["maintenance_inbox"].get(recorded[0])
        if process_in is None or maintenance_in is None or telemetry[2] is None or recorded[2] is None:
            continue
        inbox_latency.append(maintenance_in - stamp)
        points = [stamp, telemetry[1], telemetry[2], process_in, recorded[1], recorded[2], maintenance_in,
                  feed.seen[index]]
        for name, a, b in zip(hops, points, points[1:], strict=False):
            hops[name].append(b - a)
    say(f"  telemetry -> maintenance inbox row       {dist_ms(inbox_latency)}")
    say("  hop by hop (each hop's own distribution):")
    for name, values in hops.items():
        say(f"    {name:<38} {dist_ms(values)}")
    say(f"  relay, collector: {relay_rounds([v[2] for v in rows['telemetry'].values() if v[2]])}")
    say(f"  relay, process:   {relay_rounds([v[2] for v in rows['recorded'].values() if v[2]])}")
    say(f"  {Pipeline.batch_line(batches, await pipe.consumer_batches())}")
    say(f"  CPU (cores): {cpu.line}")
    sent = sum(1 for _ in pipe.parts_between(begun, math.inf))
    say(f"  CPU ms per part: {cpu_per_part(cores, cpu.seconds, max(sent, 1))}")
    return polled, achieved


async def throughput_phase(pipe: Pipeline, cpu: CpuMeter, profiler: Profiler) -> float:
    per_machine = PARTS // MACHINES
    total = per_machine * MACHINES
    batches = await pipe.consumer_batches()
    await profiler.start("max")
    started = time.time()
    cpu.start()

    async def feed_all(feed: Feed) -> None:
        left = per_machine
        while left:
            n = min(PUSH_BATCH, left)
            await pipe.push(feed, n)
            left -= n

    await asyncio.gather(*(feed_all(feed) for feed in pipe.feeds))
    accepted = time.time() - started
    await pipe.drain(300, "pipeline drain (throughput)")
    done = max(seen for feed in pipe.feeds for seen in feed.seen[-per_machine:])
    cores = await cpu.stop(pipe.db)
    await profiler.stop()
    elapsed = done - started
    rate = total / elapsed
    rows = await pipe.rows_since(started - 0.001)
    stages = [
        ("collector accepted (last HTTP response)", accepted),
        ("collector committed (last outbox row)", max(v[1] for v in rows["telemetry"].values())),
        ("collector relayed (last published_at)", max(v[2] or math.inf for v in rows["telemetry"].values())),
        ("process started its last batch (inbox)", max(rows["process_inbox"].values())),
        ("process committed (last outbox row)", max(v[1] for v in rows["recorded"].values())),
        ("process relayed (last published_at)", max(v[2] or math.inf for v in rows["recorded"].values())),
        ("maintenance started its last batch (inbox)", max(rows["maintenance_inbox"].values())),
        ("maintenance timers show all (polled)", done),
    ]
    say(f"maximum load: {total:,} parts in pushes of {PUSH_BATCH}, one in flight per machine")
    for name, at in stages:
        seconds = at if name.startswith("collector accepted") else at - started
        say(f"  {name:<44} {seconds:6.2f} s  {total / seconds:8,.0f} parts/s")
    say(f"  relay, collector: {relay_rounds([v[2] for v in rows['telemetry'].values() if v[2]])}")
    say(f"  relay, process:   {relay_rounds([v[2] for v in rows['recorded'].values() if v[2]])}")
    say(f"  {Pipeline.batch_line(batches, await pipe.consumer_batches())}")
    say(f"  CPU (cores): {cpu.line}")
    say(f"  CPU ms per part: {cpu_per_part(cores, cpu.seconds, total)}")
    return rate


def open_nginx_temp(work: Path, kinds: Iterable[str]) -> None:
    """Run as root, nginx's workers are `nobody`: they spool request bodies over 16 kB (a push of
    200 items) to <prefix>/temp/client_body, which must be theirs to write (mkdtemp makes 0700)."""
    work.chmod(0o755)
    for kind in kinds:
        (work / "nginx" / "temp" / kind).mkdir(parents=True)
        (work / "nginx" / "temp" / kind).chmod(0o777)


async def run_pipeline(db_url: str, amqp_url: str, nginx: str) -> dict[str, Any]:
    launcher = load_launcher()
    tag = uuid.uuid4().hex[:8]
    prefix, queue_prefix = f"bench{tag}_", f"bench{tag}."
    secret = secrets.token_hex(24)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="taktline-pipeline-bench-") as folder:
        work = Path(folder)
        open_nginx_temp(work, launcher.TEMP_PATHS)
        env = launcher.service_env(
            os.environ, TAKTLINE_DATABASE_URL=db_url, TAKTLINE_DATABASE_SCHEMA_PREFIX=prefix,
            TAKTLINE_AMQP_URL=amqp_url, TAKTLINE_EXCHANGE=f"taktline.bench.{tag}",
            TAKTLINE_DEAD_EXCHANGE=f"taktline.bench.{tag}.dead", TAKTLINE_QUEUE_PREFIX=queue_prefix,
            TAKTLINE_AUTH_SECRET=secret, TAKTLINE_DATA_DIR=str(work / "data"))
        stack = launcher.Stack(env, work / "nginx", ports={name: free_port() for name in SERVICES},
                               gateway_port=free_port(), log_dir=work / "logs", nginx=nginx)
        db: asyncpg.Connection | None = None
        watcher: asyncio.Task[None] | None = None
        try:
            await stack.start(within=60)
            pids = {name: process.pid for name, process in stack.processes.items()}
            auth = Authenticator(Settings(auth_secret=secret, _env_file=None))  # type: ignore[call-arg]
            db = await asyncpg.connect(db_url)
            limits = httpx.Limits(max_connections=2 * MACHINES, max_keepalive_connections=2 * MACHINES)
            async with httpx.AsyncClient(base_url=stack.gateway, timeout=60, limits=limits, headers={
                    "Authorization": f"Bearer {auth.mint('bench-planner', ['planner'])}"}) as client:
                pipe = Pipeline(stack, client, db, prefix, tag, auth.mint("bench-machine", ["machine"]))
                await pipe.setup()
                watcher = asyncio.create_task(pipe.watch_timers(db_url))
                cpu, profiler = CpuMeter(pids), Profiler(pids)
                try:
                    results["low"], results["low_achieved"] = await paced_phase(
                        pipe, cpu, profiler, label="low load (100 parts/s)", per_tick=PER_TICK, tick=LOW_TICK,
                        seconds=LOW_SECONDS)
                    results["polled"], results["achieved"] = await paced_phase(
                        pipe, cpu, profiler, label="steady load (1,000 parts/s)", per_tick=PER_TICK, tick=TICK,
                        seconds=STEADY)
                    results["memory_steady"] = {name: vm_hwm_mib(pids[name]) for name in SERVICES}
                    results["rate"] = await throughput_phase(pipe, cpu, profiler)
                    results["memory_max"] = {name: vm_hwm_mib(pids[name]) for name in SERVICES}
                finally:
                    await profiler.stop()
                    await pipe.close()
        except BaseException:
            for name in ("migrate", *SERVICES, "nginx"):
                tail = stack.log_tail(name, 2000)
                if tail:
                    print(f"--- {name} log tail ---\n{tail}", file=sys.stderr)
            raise
        finally:
            if watcher:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await watcher
            if db is not None:
                with contextlib.suppress(Exception):
                    await db.close()
            try:
                codes = await stack.stop()
                bad = {name: code for name, code in codes.items() if code not in (0, -15)}
                if bad:
                    print(f"pipeline: unclean exits {bad}", file=sys.stderr)
            finally:
                await clean_up(
                    db_url, amqp_url, schemas=[f"{prefix}{name}" for name in SERVICES],
                    queues=[f"{queue_prefix}{name}{dead}" for name in SERVICES for dead in ("", ".dead")],
                    exchanges=[f"taktline.bench.{tag}", f"taktline.bench.{tag}.dead"])
    return results


# --- Main ----------------------------------------------------------------------------------------------


async def main() -> int:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    launcher = load_launcher()
    nginx = launcher.find_nginx()
    db_url, db_reason = find_database_url()
    amqp_url, amqp_reason = find_amqp_url()
    if db_url is None or amqp_url is None or nginx is None:
        say(f"pipeline bench: skipped (PostgreSQL: {db_reason}; RabbitMQ: {amqp_reason}; "
            f"nginx: {nginx or 'not installed'})")
        return 0
    db_url = asyncpg_url(db_url)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]  # TAKTLINE_* from the environment
    say(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} before the run; consumer_prefetch "
        f"{settings.consumer_prefetch}, consumer_batch_size {settings.consumer_batch_size}, consumer_batch_wait_ms "
        f"{settings.consumer_batch_wait_ms:g}, relay_interval {settings.relay_interval:g}, relay_batch_size "
        f"{settings.relay_batch_size}, events_per_message {settings.events_per_message}")
    if os.environ.get("BENCH_PIPELINE_ONLY"):  # iterating on the services: no raw runs, no ratio
        await run_pipeline(db_url, amqp_url, nginx)
        return 0
    hop_rate, hop_latency, hop_achieved = await raw_ceiling(db_url, amqp_url, settings)
    say(f"raw, one hop, at {hop_achieved:,.0f} msg/s: publish -> commit  {dist_ms(hop_latency)}")
    raw_rate, raw_latency, raw_achieved = await raw_pipeline_ceiling(db_url, amqp_url, settings)
    say(f"raw, the pipeline's shape, at {raw_achieved:,.0f} parts/s: collector commit -> maintenance commit  "
        f"{dist_ms(raw_latency)}")
    if os.environ.get("BENCH_RAW_ONLY"):
        return 0
    result = await run_pipeline(db_url, amqp_url, nginx)

    p99 = pct(result["polled"], 99) * 1000
    latency_met = p99 < TARGET_P99_MS and result["achieved"] >= 0.99 * PER_TICK / TICK

    def latency(values: list[float]) -> str:
        return f"{pct(values, 50) * 1000:8.1f} / {pct(values, 99) * 1000:.1f} ms"

    say()
    say("summary")
    # Judged against the raw ceiling of the same rows and hops, in three processes as deployed
    # (docs/decisions/0007); the one-hop figure (one message, one row) is printed for reference.
    ratio = result["rate"] / raw_rate
    say(f"  raw ceiling: the pipeline's rows and two hops, 3 processes  {raw_rate:8,.0f} parts/s")
    say(f"  raw, one hop (one message, one row; reference)        {hop_rate:8,.0f} parts/s")
    say(f"  pipeline (collector -> process -> maintenance)        {result['rate']:8,.0f} parts/s")
    say(f"  ratio pipeline / raw ceiling                          {ratio:8.2f}   target >= {TARGET_RATIO:.2f}: "
        f"{'met' if ratio >= TARGET_RATIO else 'MISSED'}")
    say(f"  ratio pipeline / raw one hop                          {result['rate'] / hop_rate:8.2f}   (reference)")
    say(f"  raw one-hop latency p50 / p99 at {hop_achieved:5,.0f} msg/s      {latency(hop_latency)}")
    say(f"  raw ceiling latency p50 / p99 at {raw_achieved:5,.0f} parts/s    {latency(raw_latency)}   "
        "(the same work without the app)")
    say(f"  pipeline latency p50 / p99 at {result['achieved']:5,.0f} parts/s       {latency(result['polled'])}   "
        f"target p99 < {TARGET_P99_MS:.0f} ms at 1,000 parts/s: {'met' if latency_met else 'MISSED'}")
    say(f"  pipeline latency p50 / p99 at {result['low_achieved']:5,.0f} parts/s       {latency(result['low'])}")
    for label, key in (("after 1,000 parts/s", "memory_steady"), ("after maximum load", "memory_max")):
        memory = result[key]
        say(f"  peak memory (VmHWM) {label:<20} " + ", ".join(f"{n} {memory[n]:.0f} MiB" for n in SERVICES))
    return 0

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
