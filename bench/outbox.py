"""Benchmark: the outbox sender sending 1,000 e-mail reminders that fall due at the same instant.

A real case record (SQLite in a temporary folder, and a fresh PostgreSQL schema when
LASTMILE_BENCH_DATABASE_URL is set) is seeded through the app's own functions: workers with
office hours, one case per client (e-mail only), and bookings made with
`scheduler.bookings.book` at a fixed clock five minutes before the due instant D, at D + 10 min,
D + 1 h and D + 24 h, so each booking's reminder_10m, reminder_1h or reminder_24h row is due at
exactly D (its other reminders are already past, so not written, or due later). The
invitations those bookings queued are sent first, at booking time, by the same sender (this
is also its warm-up).

The sender is the app's: `web.app.create_app` started with an `aiohttp` AppRunner (no site, no
scheduler), `LASTMILE_SMTP_URL` pointing at an aiosmtpd sink in its own process on 127.0.0.1
that only records each message's arrival time (CLOCK_MONOTONIC, which both processes share),
its Message-ID and its size. With the app's clock fixed at D, one `Sender.run_due()` sends what
is due; a second pass at the same instant must find nothing. Baseline, in the same run: the
very messages the sender sent (as the sink received them, parsed back into EmailMessage
objects before the clock starts) sent again by a plain aiosmtplib loop with no database and
no composing, one `aiosmtplib.send` (one connection) per message at the sender's concurrency
(the sender itself keeps one connection per worker for the pass).

Run alone: `.venv/bin/python -m bench.outbox [--quick]` prints the Markdown section.

Why one module of this length: it is one benchmark end to end (its scenario, the process it
measures, its baseline in the same run, and its section of RESULTS.md); nothing else uses its parts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import email
import math
import multiprocessing
import os
import re
import secrets
import socket
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from email.message import EmailMessage
from email.policy import default as default_policy
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiosmtplib
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlmodel import select

from bench.booking import PG_ENV, fresh_database
from bench.timing import percentile, say
from caserecord.audit import Actor
from caserecord.cases import create_case
from caserecord.db import Database, make_engine
from caserecord.models import OUTBOX_FAILED, OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_SENT, User
from scheduler import blocks, bookings, hours, mail, outbox
from web.app import create_app
from web.services import SERVICES
from web.settings import Settings

MESSAGES = 1000
QUICK_MESSAGES = 200
DUE = datetime(2030, 6, 4, 12, 0, tzinfo=UTC)  # a Tuesday; the instant every reminder is due
BOOKED_AT = DUE - timedelta(minutes=5)
PUBLIC_URL = "https://lastmile.example.org"
MAIL_FROM = "Lastmile Agency <visits@agency.example.org>"
BASELINE_WARMUP = 20
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)


# --- the SMTP sink, in its own process -------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Recorder:
    """An aiosmtpd handler that only notes when each message arrived, its Message-ID and size."""

    def __init__(self, arrived: Any) -> None:
        self.arrived = arrived  # a shared counter the bench process reads for progress
        self.records: list[tuple[float, str, int]] = []
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        at = time.monotonic()
        data = envelope.content
        assert isinstance(data, bytes)
        found = _MESSAGE_ID.search(data)
        self.records.append((at, found.group(1).decode() if found else "", len(data)))
        self.messages.append(data)  # kept as received, for the baseline to send again
        self.arrived.value += 1
        return "250 OK"


def _sink_main(conn: Connection, arrived: Any) -> None:
    """Serve SMTP on 127.0.0.1 until told to stop; answer `reset` and `report` over `conn`."""
    recorder = _Recorder(arrived)
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, server_hostname="sink.bench.test")
    controller.start()
    conn.send(port)
    cpu = time.process_time()
    try:
        while True:
            command = conn.recv()
            if command == "reset":
                recorder.records = []
                recorder.messages = []
                arrived.value = 0
                cpu = time.process_time()
                conn.send(None)
            elif command == "report":
                conn.send((list(recorder.records), time.process_time() - cpu, list(recorder.messages)))
            else:
                break
    finally:
        controller.stop()


@dataclass(frozen=True, slots=True)
class SinkReport:
    records: list[tuple[float, str, int]]  # (monotonic arrival, Message-ID, bytes)
    cpu: float  # the sink process's CPU seconds since the last reset
    messages: list[bytes]  # every message received, as it arrived


class Sink:
    """The aiosmtpd sink process, seen from the bench."""

    def __init__(self, conn: Connection, arrived: Any, port: int) -> None:
        self._conn = conn
        self._arrived = arrived
        self.port = port

    @property
    def count(self) -> int:
        value: int = self._arrived.value
        return value

    def reset(self) -> None:
        self._conn.send("reset")
        self._conn.recv()

    def report(self) -> SinkReport:
        self._conn.send("report")
        records, cpu, messages = self._conn.recv()
        return SinkReport(records, cpu, messages)


@contextlib.contextmanager
def smtp_sink() -> Iterator[Sink]:
    """Start the sink process and yield it; stop it afterwards."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    arrived = ctx.Value("q", 0, lock=False)
    proc = ctx.Process(target=_sink_main, args=(theirs, arrived), name="smtp-sink", daemon=True)
    proc.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("the SMTP sink did not start")
        yield Sink(ours, arrived, int(ours.recv()))
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join()


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Pass:
    """One timed burst of messages into the sink."""

    label: str
    wanted: int
    seconds: float  # from the start (the due instant) until the last message was done
    delays: tuple[float, ...]  # arrival at the sink minus the start, per message
    sizes: tuple[int, ...]
    cpu: float  # this process's CPU seconds (all threads: event loop and database pool)
    sink_cpu: float

    @property
    def arrived(self) -> int:
        return len(self.delays)

    @property
    def per_second(self) -> float:
        return self.arrived / self.seconds if self.seconds else 0.0


@dataclass(frozen=True, slots=True)
class Once:
    """Was every due reminder sent exactly once?"""

    due_rows: int
    sent_rows: int
    retried_rows: int  # sent rows that needed more than one attempt
    left_rows: int  # due rows still pending, being sent or failed
    distinct_ids: int
    duplicates: int  # extra copies of a Message-ID at the sink
    unexpected: int  # Message-IDs at the sink that match no due row
    second_pass: int  # messages a second pass at the same instant handled

    @property
    def ok(self) -> bool:
        return (
            self.sent_rows == self.due_rows == self.distinct_ids
            and not (self.retried_rows or self.left_rows or self.duplicates or self.unexpected)
            and self.second_pass == 0
        )


@dataclass(frozen=True, slots=True)
class DatabaseResult:
    kind: str
    detail: str = ""
    seed_seconds: float = 0.0
    invitations: int = 0
    invitation_seconds: float = 0.0
    outcomes: dict[str, int] = field(default_factory=dict)
    sender: Pass | None = None
    baseline: Pass | None = None
    once: Once | None = None
    concurrency: int = 0
    batch: int = 0
    error: str | None = None


# --- seeding ---------------------------------------------------------------------------------


def _settings(tmp: Path, url: str, port: int) -> Settings:
    return Settings(
        data_dir=tmp / "data",
        database_url=url,
        public_url=PUBLIC_URL,
        mail_from=MAIL_FROM,
        smtp_url=f"smtp://127.0.0.1:{port}",
        outbox_sender=False,  # no scheduler: the bench calls run_due itself, at the due instant
    )


def _seed(db: Database, settings: Settings, messages: int) -> str:
    """Add workers, cases and bookings whose reminders (e-mail only) fall due at DUE."""
    reminders = outbox.parse_reminders(settings.reminder_minutes)
    join = bookings.JoinPolicy(
        early=timedelta(minutes=settings.join_early_minutes),
        grace=timedelta(minutes=settings.join_grace_minutes),
        reminders=reminders,
    )
    if min(reminders) <= DUE - BOOKED_AT:
        raise RuntimeError("the bookings must be made before their shortest reminder is due")
    workers = math.ceil(messages / len(reminders))
    with db.session(write=True) as s:
        admin = s.exec(select(User).where(User.role == "admin")).first()
        assert admin is not None and admin.id is not None
        actor = Actor(user_id=admin.id, role="admin")
        users = [
            User(
                email=f"outbox-worker{i}@bench.test",
                name=f"Worker {i}",
                role="worker",
                password_hash=admin.password_hash,
                timezone="UTC",
                feed_token=secrets.token_urlsafe(24),
            )
            for i in range(workers)
        ]
        s.add_all(users)
        s.flush()
        worker_ids = [u.id for u in users if u.id is not None]
    spec = hours.BlockSpec(
        weekdays=("MO", "TU", "WE", "TH", "FR", "SA", "SU"),
        start_time=clock_time(8, 0),
        end_time=clock_time(18, 0),
        timezone="UTC",
        slot_minutes=10,
        mode="booked",
        starts_on=BOOKED_AT.date() - timedelta(days=1),
        max_days_ahead=60,
    )
    made = 0
    started = time.perf_counter()
    for n, worker_id in enumerate(worker_ids):
        with db.session(write=True) as s:
            blocks.create_block(s, actor, worker_id, spec)
            for before in reminders:
                if made == messages:
                    break
                case, _ = create_case(
                    s,
                    actor,
                    worker_id=worker_id,
                    client_name=f"Client {worker_id}-{made}",
                    email=f"client{made}@example.net",
                )
                assert case.id is not None
                # Booked for DUE + `before`: its reminder `before` the start is due at DUE.
                bookings.book(s, actor, worker_id, case.id, DUE + before, BOOKED_AT, join)
                made += 1
        if (n + 1) % 100 == 0 and n + 1 < len(worker_ids):
            say(f"    ... {n + 1}/{len(worker_ids)} workers booked, {time.perf_counter() - started:.1f} s")
    kinds = ", ".join(outbox.reminder_kind(r) for r in reminders)
    return (
        f"{workers} workers (office hours in UTC, 10-minute slots), {made} cases and bookings, one client "
        f"each with an e-mail address and no phone; their {kinds} rows are due at the same instant"
    )


# --- the runs --------------------------------------------------------------------------------


@dataclass
class FixedClock:
    """The app's clock: stands still where the bench puts it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@contextlib.asynccontextmanager
async def _ticker(sink: Sink, wanted: int, label: str) -> AsyncIterator[None]:
    started = time.monotonic()

    async def tick() -> None:
        while True:
            await asyncio.sleep(2)
            say(f"    ... {label}: {sink.count}/{wanted} at the sink, {time.monotonic() - started:.1f} s")

    task = asyncio.create_task(tick())
    try:
        yield
    finally:
        task.cancel()


def _pass(label: str, wanted: int, started: float, ended: float, cpu: float, report: SinkReport) -> Pass:
    return Pass(
        label=label,
        wanted=wanted,
        seconds=ended - started,
        delays=tuple(sorted(at - started for at, _, _ in report.records)),
        sizes=tuple(size for _, _, size in report.records),
        cpu=cpu,
        sink_cpu=report.cpu,
    )


def _message_id(key: str, domain: str) -> str:
    """The Message-ID `scheduler.mail.compose` gives the row with `key`."""
    return f"<{re.sub(r'[^A-Za-z0-9.-]', '.', key)}@{domain}>"


async def _run_sender(
    settings: Settings, db: Database, sink: Sink, messages: int
) -> tuple[DatabaseResult, list[bytes]]:
    clock = FixedClock(BOOKED_AT)
    app = create_app(settings, clock=clock, database=db, run_migrations=False)
    runner = web.AppRunner(app)
    await runner.setup()  # runs the app's start-up: the sender is built as in production
    try:
        sender = app[SERVICES].sender
        config = sender.config
        say(f"  invitations, sent at booking time (the sender's warm-up), concurrency {config.concurrency}")
        sink.reset()
        t0 = time.monotonic()
        invited = await sender.run_due()
        invitation_seconds = time.monotonic() - t0
        say(f"    {dict(invited)} in {invitation_seconds:.1f} s")
        sink.reset()
        clock.now = DUE
        say(f"  {messages} reminders due at {DUE:%Y-%m-%d %H:%M} UTC; the app's clock stands at that instant")
        async with _ticker(sink, messages, "sender"):
            cpu0 = time.process_time()
            started = time.monotonic()
            outcomes = await sender.run_due()
            ended = time.monotonic()
            cpu = time.process_time() - cpu0
        report = sink.report()
        again = await sender.run_due()
    finally:
        await runner.cleanup()
    result = _pass("sender", messages, started, ended, cpu, report)
    say(
        f"    {dict(outcomes)} in {result.seconds:.2f} s: {result.per_second:.0f} messages/s, delay p50 "
        f"{percentile(result.delays, 50):.2f} s, max {max(result.delays, default=0):.2f} s"
    )
    once = await _check_once(db, settings, report, sum(again.values()))
    say(
        f"    exactly once: {'yes' if once.ok else 'NO'} ({once.sent_rows}/{once.due_rows} rows sent, "
        f"{once.distinct_ids} distinct Message-IDs, {once.duplicates} duplicates)"
    )
    return (
        DatabaseResult(
            kind="",
            invitations=invited["sent"],
            invitation_seconds=invitation_seconds,
            outcomes=dict(outcomes),
            sender=result,
            once=once,
            concurrency=config.concurrency,
            batch=config.batch,
        ),
        report.messages,
    )


async def _check_once(db: Database, settings: Settings, report: SinkReport, second_pass: int) -> Once:
    limit = 20 * MESSAGES
    sent = await db.read(outbox.list_messages, (OUTBOX_SENT,), limit)
    left = await db.read(outbox.list_messages, (OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_FAILED), limit)
    due_sent = [r for r in sent if r.kind.startswith(outbox.REMINDER_PREFIX) and r.due_at == DUE]
    due_left = [r for r in left if r.due_at <= DUE]
    domain = mail.sender_address(settings.mail_from, settings.base_url).domain
    expected = {_message_id(r.key, domain) for r in due_sent + due_left}
    seen = Counter(message_id for _, message_id, _ in report.records)
    return Once(
        due_rows=len(due_sent) + len(due_left),
        sent_rows=len(due_sent),
        retried_rows=sum(1 for r in due_sent if r.attempts != 1),
        left_rows=len(due_left),
        distinct_ids=len(seen),
        duplicates=sum(n - 1 for n in seen.values()),
        unexpected=len(set(seen) - expected),
        second_pass=second_pass,
    )


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    return msg


async def _run_baseline(sink: Sink, sent: list[bytes], concurrency: int) -> Pass:
    """Send again the messages the sender sent, with plain aiosmtplib: no database, nothing to compose."""
    warmup = [_parse(raw) for raw in sent[:BASELINE_WARMUP]]
    copies = [_parse(raw) for raw in sent]
    messages = len(copies)
    slots = asyncio.Semaphore(concurrency)

    async def send(msg: EmailMessage) -> None:
        async with slots:
            await aiosmtplib.send(msg, hostname="127.0.0.1", port=sink.port, timeout=30)

    await asyncio.gather(*(send(m) for m in warmup))
    sink.reset()
    say(f"  baseline: the same {messages} messages by plain aiosmtplib, concurrency {concurrency}")
    async with _ticker(sink, messages, "baseline"):
        cpu0 = time.process_time()
        started = time.monotonic()
        await asyncio.gather(*(send(m) for m in copies))
        ended = time.monotonic()
        cpu = time.process_time() - cpu0
    result = _pass("baseline", messages, started, ended, cpu, sink.report())
    say(
        f"    {result.arrived} in {result.seconds:.2f} s: {result.per_second:.0f} messages/s, delay p50 "
        f"{percentile(result.delays, 50):.2f} s"
    )
    return result


async def _bench_database(kind: str, sink: Sink, messages: int) -> DatabaseResult:
    say(f"[outbox/{kind}] seeding a fresh database")
    with tempfile.TemporaryDirectory(prefix="lastmile-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with fresh_database(kind, tmp) as (url, schema, described):
            settings = _settings(tmp, url, sink.port)
            db = Database(make_engine(url, search_path=schema), threads=settings.db_threads)
            try:
                t0 = time.perf_counter()
                seeded = await asyncio.to_thread(_seed, db, settings, messages)
                seed_seconds = time.perf_counter() - t0
                say(f"  seeded in {seed_seconds:.1f} s: {seeded}")
                result, sent = await _run_sender(settings, db, sink, messages)
            finally:
                db.close()
    baseline = await _run_baseline(sink, sent, result.concurrency)
    database = described.split(";", 1)[0]
    return DatabaseResult(
        kind=kind,
        detail=f"{database}; {seeded}",
        seed_seconds=seed_seconds,
        invitations=result.invitations,
        invitation_seconds=result.invitation_seconds,
        outcomes=result.outcomes,
        sender=result.sender,
        baseline=baseline,
        once=result.once,
        concurrency=result.concurrency,
        batch=result.batch,
    )


def run(quick: bool = False) -> list[DatabaseResult]:
    messages = QUICK_MESSAGES if quick else MESSAGES
    kinds = ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]
    results = []
    say("[outbox] starting the SMTP sink (aiosmtpd, its own process, 127.0.0.1)")
    with smtp_sink() as sink:
        for kind in kinds:
            try:
                results.append(asyncio.run(_bench_database(kind, sink, messages)))
            except Exception as exc:  # one database failing must not lose the other's numbers
                say(f"[outbox/{kind}] FAILED: {type(exc).__name__}: {exc}")
                results.append(DatabaseResult(kind, error=f"{type(exc).__name__}: {exc}"))
    return results


# --- the report ------------------------------------------------------------------------------


def _delays(p: Pass) -> str:
    d = p.delays
    if not d:
        return "n/a | n/a | n/a | n/a"
    return f"{d[0]:.2f} | {percentile(d, 50):.2f} | {percentile(d, 95):.2f} | {d[-1]:.2f}"


def _row(p: Pass, base: Pass) -> str:
    ratio = p.per_second / base.per_second if base.per_second else 0.0
    arrived = p.arrived or 1
    size = statistics.fmean(p.sizes) if p.sizes else 0.0
    return (
        f"| {p.label} | {p.arrived}/{p.wanted} | {p.seconds:.2f} | {p.per_second:.0f} | {ratio:.2f}x "
        f"| {_delays(p)} | {p.cpu / arrived * 1000:.1f} | {p.sink_cpu / arrived * 1000:.1f} | {size:,.0f} |"
    )


def markdown(results: list[DatabaseResult]) -> list[str]:
    done = next((r for r in results if r.sender is not None), None)
    wanted = done.sender.wanted if done is not None and done.sender is not None else MESSAGES
    batch = done.batch if done is not None else 200
    concurrency = done.concurrency if done is not None else 10
    out = [
        "## Outbox: reminders due at the same instant",
        "",
        f"{wanted:,} e-mail reminders in a real case record, all due at the same instant D, sent by the",
        "app's own sender (`web.app.create_app` started without its scheduler, `LASTMILE_SMTP_URL` set,",
        "the app's clock fixed at D, one `Sender.run_due()`) to an aiosmtpd sink on 127.0.0.1 in its own",
        "process that only notes each message's arrival. The rows come from real bookings",
        "(`scheduler.bookings.book` at D - 5 min for D + 10 min, D + 1 h and D + 24 h, so one",
        "reminder_10m, reminder_1h or reminder_24h row each is due at D); the invitations they queued",
        "were sent first, by the same sender (its warm-up). The sender claims due rows",
        f"{batch} per write transaction (one conditional UPDATE, then booking, client, worker, visit and",
        f"link for all of them in a few queries), {concurrency} workers compose plain text and HTML and",
        "send each over the worker's one SMTP connection kept for the pass (`aiosmtplib.SMTP`), and the",
        "outcomes are marked sent in batches (one write transaction for all that finished meanwhile).",
        "**Baseline**: the very messages the sender sent, as the sink received them (parsed back into",
        "`EmailMessage`s before the clock starts), sent again by a plain aiosmtplib loop with no",
        "database and nothing to compose, one connection per message (`aiosmtplib.send`) and",
        f"{concurrency} at a time. **Ratio** = sender messages/s / baseline messages/s. **Delay**:",
        "from D (the moment `run_due` starts) to each message's arrival at the sink: the first, p50,",
        "p95 and last. **Seconds** = until `run_due` returned (the last row marked sent).",
        "**CPU ms / message**: the bench process (event loop and database threads) and the sink",
        "process. **Exactly once**:",
        "every due row is `sent` after one attempt, the sink got one copy of each row's Message-ID and",
        "no other, and a second `run_due` at D found nothing.",
        "",
    ]
    if not any(r.kind == "postgresql" for r in results):
        out += [f"PostgreSQL: not run (set `{PG_ENV}` to a PostgreSQL URL to include it).", ""]
    for r in results:
        out += [f"### {'SQLite' if r.kind == 'sqlite' else 'PostgreSQL'}", ""]
        if r.error is not None or r.sender is None or r.baseline is None or r.once is None:
            out += [f"Failed: `{r.error}`", ""]
            continue
        o = r.once
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(r.outcomes.items())) or "nothing"
        out += [
            f"{r.detail}. Seeding took {r.seed_seconds:.0f} s; the {r.invitations} invitations took "
            f"{r.invitation_seconds:.1f} s (not in the figures).",
            "",
            "| run | arrived | seconds | messages/s | ratio vs baseline | delay first s | delay p50 s "
            "| delay p95 s | delay max s | CPU ms / message (bench) | CPU ms / message (sink) | mean bytes |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            _row(r.sender, r.baseline),
            _row(r.baseline, r.baseline),
            "",
            f"`run_due` reported {outcomes}. Exactly once: **{'yes' if o.ok else 'NO'}**: {o.sent_rows} of "
            f"{o.due_rows} due rows sent ({o.retried_rows} after more than one attempt, {o.left_rows} left "
            f"pending or failed); {o.distinct_ids} distinct Message-IDs at the sink, {o.duplicates} "
            f"duplicate copies, {o.unexpected} not from a due row; a second pass at D handled "
            f"{o.second_pass}.",
            "",
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MESSAGES} messages")
    args = parser.parse_args(argv)
    print("\n".join(markdown(run(quick=args.quick))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
