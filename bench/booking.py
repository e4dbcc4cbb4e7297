"""Benchmark 2: booking throughput over HTTP against the real server and database.

The app (`web.app.create_app`) runs in its own process on 127.0.0.1 (see bench/server.py)
against a fresh SQLite file in a temporary folder, and against a fresh schema in
PostgreSQL when LASTMILE_BENCH_DATABASE_URL is set. This process is the clients: N
distinct free slots booked by C concurrent clients, compared with the same kind of
bookings made one after another (C = 1); then 200 requests at once for one slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text

from bench.machine import ROOT
from bench.timing import percentile, say
from caserecord.accounts import hash_password
from caserecord.db import Database, make_engine, migrate
from caserecord.models import User

PASSWORD = "bench password 1"  # noqa: S105 - a throw-away account in a throw-away database
WORKER_ZONES = (
    "America/Los_Angeles",
    "Europe/London",
    "America/New_York",
    "America/Chicago",
    "Europe/Dublin",
)
WORKERS = 10
CASES_PER_WORKER = 4
SESSIONS = 10  # sign-ins the clients share, round robin
CONCURRENCY = (1, 10, 50)
CONTENDERS = 200
PG_ENV = "LASTMILE_BENCH_DATABASE_URL"


@dataclass(frozen=True, slots=True)
class Target:
    """A free slot and the case to book it for."""

    worker_id: int
    case_id: int
    start: str


@dataclass(frozen=True, slots=True)
class Run:
    clients: int
    seconds: float
    latencies: tuple[float, ...]
    statuses: tuple[tuple[int, int], ...]
    server_cpu: float | None  # CPU seconds the server process used during the run
    client_cpu: float  # CPU seconds this (client) process used during the run

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def created(self) -> int:
        return dict(self.statuses).get(201, 0)

    @property
    def per_second(self) -> float:
        return self.created / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class DatabaseResult:
    kind: str
    detail: str
    runs: list[Run]
    contended: Run | None
    error: str | None = None


# --- the database ------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(kind: str, tmp: Path) -> Iterator[tuple[str, str | None, str]]:
    """Yield (url, schema, description) of a migrated, empty database; drop it afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        db = Database(make_engine(url), threads=1)
        migrate(db.engine)
        detail = _seed(db)
        db.close()
        yield url, None, f"SQLite file in a temporary folder (WAL); {detail}"
        return
    url = os.environ[PG_ENV]
    schema = f"bench_{secrets.token_hex(6)}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS btree_gist"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        version = conn.execute(text("SHOW server_version")).scalar()
    try:
        db = Database(make_engine(url, search_path=schema), threads=1)
        migrate(db.engine)
        detail = _seed(db)
        db.close()
        yield url, schema, f"PostgreSQL {version}, a fresh schema; {detail}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()


def _seed(db: Database) -> str:
    """Add the admin who books and the workers booked (one shared argon2 hash)."""
    hashed = hash_password(PASSWORD)
    with db.session(write=True) as s:
        s.add(
            User(
                email="admin@bench.test",
                name="Bench Admin",
                role="admin",
                password_hash=hashed,
                feed_token=secrets.token_urlsafe(24),
            )
        )
        for i in range(WORKERS):
            s.add(
                User(
                    email=f"worker{i}@bench.test",
                    name=f"Worker {i}",
                    role="worker",
                    password_hash=hashed,
                    timezone=WORKER_ZONES[i % len(WORKER_ZONES)],
                    feed_token=secrets.token_urlsafe(24),
                )
            )
    return f"{WORKERS} workers, {CASES_PER_WORKER} cases each"


# --- the server --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Server:
    base_url: str
    pid: int

    def cpu_seconds(self) -> float | None:
        """Return the CPU time (user + system) the server has used so far, where /proc tells."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time and both processes' CPU time over one run."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.wall = time.perf_counter()
        self.client = time.process_time()
        self.server_start = server.cpu_seconds()

    def read(self) -> tuple[float, float | None, float]:
        seconds = time.perf_counter() - self.wall
        end = self.server.cpu_seconds()
        server = None if end is None or self.server_start is None else end - self.server_start
        return seconds, server, time.process_time() - self.client


@contextlib.asynccontextmanager
async def running_server(url: str, schema: str | None, log: Path) -> AsyncIterator[Server]:
    """Start bench.server in its own process and yield it; stop it afterwards."""
    args = [sys.executable, "-m", "bench.server", "--database-url", url]
    if schema:
        args += ["--schema", schema]
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=err
        )
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            if not line.startswith(b"LISTENING "):
                raise RuntimeError(f"the server did not start: {_tail(log)}")
            yield Server(f"http://127.0.0.1:{int(line.split()[1])}", proc.pid)
        finally:
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), timeout=20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def _tail(log: Path) -> str:
    try:
        return log.read_text(errors="replace")[-2000:]
    except OSError:
        return "(no log)"


# --- the clients -------------------------------------------------------------------------


async def _json(resp: aiohttp.ClientResponse, status: int) -> Any:
    body = await resp.text()
    if resp.status != status:
        raise RuntimeError(f"{resp.method} {resp.url.path}: {resp.status} (wanted {status}): {body[:500]}")
    return await resp.json()


async def setup(http: aiohttp.ClientSession) -> tuple[list[dict[str, str]], list[Target]]:
    """Sign in, publish office hours and open cases over the API; return headers and free slots."""
    headers = []
    for _ in range(SESSIONS):
        async with http.post(
            "/api/session", json={"email": "admin@bench.test", "password": PASSWORD}
        ) as resp:
            headers.append({"Authorization": f"Bearer {(await _json(resp, 200))['token']}"})
    h = headers[0]
    async with http.get("/api/workers", headers=h) as resp:
        workers = [w for w in await _json(resp, 200) if w["role"] == "worker"]
    first = datetime.now(UTC).date() + timedelta(days=2)
    per_worker: list[list[Target]] = []
    for w in workers:
        block = {
            "weekdays": ["MO", "TU", "WE", "TH", "FR"],
            "start_time": "08:00",
            "end_time": "17:00",
            "timezone": w["timezone"],
            "slot_minutes": 30,
            "mode": "booked",
            "starts_on": first.isoformat(),
            "max_days_ahead": 365,
        }
        async with http.post(f"/api/workers/{w['id']}/office-hours", json=block, headers=h) as resp:
            await _json(resp, 201)
        cases = []
        for c in range(CASES_PER_WORKER):
            body = {
                "worker_id": w["id"],
                "client": {
                    "name": f"Client {w['id']}-{c}",
                    "email": "client@example.net",
                    "phone": "+1 503 555 0199",
                },
            }
            async with http.post("/api/cases", json=body, headers=h) as resp:
                cases.append(int((await _json(resp, 201))["id"]))
        last = first + timedelta(days=41)
        query = f"from={first.isoformat()}&to={last.isoformat()}"
        async with http.get(f"/api/workers/{w['id']}/slots?{query}", headers=h) as resp:
            free = [s["start"] for s in await _json(resp, 200) if s["available"]]
        per_worker.append([Target(w["id"], cases[i % len(cases)], start) for i, start in enumerate(free)])
    # Round robin over workers, so concurrent clients book different workers' calendars.
    targets = [t for group in zip(*per_worker, strict=False) for t in group]
    return headers, targets


async def book(
    server: Server, targets: list[Target], clients: int, headers: list[dict[str, str]], label: str
) -> Run:
    """Book `targets` with `clients` concurrent clients (each its own connection); time it all."""
    pending = iter(targets)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(server.base_url, connector=connector, timeout=timeout) as http:

        async def client(i: int) -> None:
            h = headers[i % len(headers)]
            for t in pending:
                body = {"worker_id": t.worker_id, "case_id": t.case_id, "start": t.start}
                t0 = time.perf_counter()
                async with http.post("/api/bookings", json=body, headers=h) as resp:
                    await resp.read()
                    statuses[resp.status] += 1
                latencies.append(time.perf_counter() - t0)

        async def ticker() -> None:
            while True:
                await asyncio.sleep(3)
                say(f"    ... {label}: {len(latencies)}/{len(targets)} answered")

        tick = asyncio.create_task(ticker())
        meter = Meter(server)
        try:
            await asyncio.gather(*(client(i) for i in range(clients)))
        finally:
            seconds, server_cpu, client_cpu = meter.read()
            tick.cancel()
    return Run(clients, seconds, tuple(latencies), tuple(sorted(statuses.items())), server_cpu, client_cpu)


async def contend(server: Server, target: Target, headers: list[dict[str, str]], cases: list[int]) -> Run:
    """Send CONTENDERS requests for one slot at once; return when every one has its answer."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(server.base_url, connector=connector, timeout=timeout) as http:

        async def attempt(i: int) -> None:
            body = {"worker_id": target.worker_id, "case_id": cases[i % len(cases)], "start": target.start}
            t0 = time.perf_counter()
            async with http.post("/api/bookings", json=body, headers=headers[i % len(headers)]) as resp:
                await resp.read()
                statuses[resp.status] += 1
            latencies.append(time.perf_counter() - t0)

        meter = Meter(server)
        await asyncio.gather(*(attempt(i) for i in range(CONTENDERS)))
        seconds, server_cpu, client_cpu = meter.read()
    return Run(CONTENDERS, seconds, tuple(latencies), tuple(sorted(statuses.items())), server_cpu, client_cpu)


async def bench_database(kind: str, per_run: int) -> DatabaseResult:
    say(f"[booking/{kind}] preparing a fresh database and starting the server")
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with fresh_database(kind, tmp) as (url, schema, detail):
            async with running_server(url, schema, tmp / "server.log") as server:
                async with aiohttp.ClientSession(server.base_url) as http:
                    headers, targets = await setup(http)
                warmup = 20
                need = warmup + per_run * len(CONCURRENCY) + 1
                if len(targets) < need:
                    raise RuntimeError(f"only {len(targets)} free slots, {need} needed")
                say(f"  server at {server.base_url}, {len(targets)} free slots; {warmup} warm-up bookings")
                await book(server, targets[:warmup], 1, headers, "warm-up")
                used = warmup
                runs = []
                for clients in CONCURRENCY:
                    batch = targets[used : used + per_run]
                    used += per_run
                    say(f"  {per_run} bookings by {clients} concurrent client(s)")
                    run = await book(server, batch, clients, headers, f"C={clients}")
                    say(
                        f"    {run.per_second:.0f} bookings/s, p50 {_ms(run, 50)} ms, p95 {_ms(run, 95)} ms, "
                        f"statuses {dict(run.statuses)}"
                    )
                    runs.append(run)
                target = targets[used]
                cases = sorted({t.case_id for t in targets if t.worker_id == target.worker_id})
                say(f"  {CONTENDERS} requests at once for the slot {target.start}")
                contended = await contend(server, target, headers, cases)
                say(f"    settled in {contended.seconds * 1000:.0f} ms, statuses {dict(contended.statuses)}")
    return DatabaseResult(kind, detail, runs, contended)


def _ms(run: Run, pct: float) -> str:
    return f"{percentile(run.latencies, pct) * 1000:.1f}"


def run(quick: bool = False) -> list[DatabaseResult]:
    per_run = 40 if quick else 300
    kinds = ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]
    results = []
    for kind in kinds:
        try:
            results.append(asyncio.run(bench_database(kind, per_run)))
        except Exception as exc:  # one database failing must not lose the other's numbers
            say(f"[booking/{kind}] FAILED: {type(exc).__name__}: {exc}")
            results.append(DatabaseResult(kind, "", [], None, error=f"{type(exc).__name__}: {exc}"))
    return results


def markdown(results: list[DatabaseResult]) -> list[str]:
    out = [
        "## 2. Booking throughput over HTTP",
        "",
        "The real app (`web.app.create_app`, 8 database threads) in its own process on 127.0.0.1,",
        "driven by aiohttp clients in the bench process (both share the 2 cores). Each run books",
        "N distinct free slots, spread round robin over the workers, with C clients that each",
        "keep one connection and send the next request when the last is answered. Every booking",
        "is `POST /api/bookings` with a bearer session: resolve the session, check the slot,",
        "insert booking, visit and audit event in one write transaction.",
        "**Ratio** = bookings/s at C / bookings/s at C = 1 (the same bookings made sequentially).",
        "**Server CPU** / **client CPU**: CPU time each process used over the run's wall time, as a",
        "share of one core (100% = one core busy the whole run; the machine has 2), and the",
        "server's CPU time per request.",
        "",
    ]
    if not any(r.kind == "postgresql" for r in results):
        out += [f"PostgreSQL: not run (set `{PG_ENV}` to a PostgreSQL URL to include it).", ""]
    for r in results:
        title = "SQLite" if r.kind == "sqlite" else "PostgreSQL"
        out += [f"### {title}", ""]
        if r.error is not None:
            out += [f"Failed: `{r.error}`", ""]
            continue
        out += [
            f"{r.detail}.",
            "",
            "| clients C | bookings | seconds | bookings/s | p50 ms | p95 ms | ratio vs C = 1 | answers "
            "| server CPU | server CPU ms / request | client CPU |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
        ]
        base = r.runs[0].per_second if r.runs else 0.0
        for run in r.runs:
            ratio = run.per_second / base if base else 0.0
            out.append(
                f"| {run.clients} | {run.requests} | {run.seconds:.2f} | {run.per_second:.0f} | "
                f"{_ms(run, 50)} | {_ms(run, 95)} | {ratio:.2f}x | {_answers(run)} | {_cpu(run)} |"
            )
        first = r.runs[0] if r.runs else None
        if first is not None and first.server_cpu:
            per = first.server_cpu / first.requests
            out += [
                "",
                f"At C = 1 the server spent {per * 1000:.1f} ms of CPU per booking, so one server process "
                f"(Python, one core at a time for its own code) tops out near {1 / per:.0f} bookings/s.",
            ]
        c = r.contended
        if c is not None:
            statuses = dict(c.statuses)
            one_winner = statuses.get(201) == 1 and statuses.get(409) == CONTENDERS - 1
            out += [
                "",
                f"Contended: {CONTENDERS} requests at once for one slot (200 connections).",
                "",
                "| requests | time to settle all, ms | p50 ms | p95 ms | answers | exactly one winner "
                "| server CPU | server CPU ms / request | client CPU |",
                "| ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | ---: |",
                f"| {c.requests} | {c.seconds * 1000:.0f} | {_ms(c, 50)} | {_ms(c, 95)} | {_answers(c)} | "
                f"{'yes' if one_winner else '**NO**'} | {_cpu(c)} |",
            ]
        out.append("")
    return out


def _cpu(run: Run) -> str:
    """Return each process's CPU use as a share of one core over the run's wall time."""
    if run.server_cpu is None:
        server = "n/a | n/a"
    else:
        server = f"{run.server_cpu / run.seconds:.0%} | {run.server_cpu / run.requests * 1000:.1f}"
    return f"{server} | {run.client_cpu / run.seconds:.0%}"


def _answers(run: Run) -> str:
    return ", ".join(f"{count}x {status}" for status, count in run.statuses)
