"""The sender: one APScheduler 3 scheduler per deployment wakes it to send what the outbox has due.

The database is the truth. The scheduler only says when to look: at start-up (catching up
on everything already due), at the next due time, and every `poll` as a safety net for rows
written by other processes. Jobs have no misfire limit and coalesce, so a late wake-up runs
once instead of being skipped. On PostgreSQL a session advisory lock picks the one process
that sends; claims in the outbox keep even two senders from sending a message twice.

A pass is a small pipeline, so a thousand reminders due at once leave within seconds: rows
are claimed a batch per transaction, sent by a few workers that each keep one SMTP
connection open for the pass, and their outcomes are recorded a batch per transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection

import scheduler.delivery as delivery
import scheduler.mail as mail
import scheduler.outbox as outbox
import scheduler.sms as sms
from caserecord.db import Database
from caserecord.models import OUTBOX_FAILED
from scheduler.delivery import MessageContext
from scheduler.outbox import EMAIL

log = logging.getLogger(__name__)
WAKE_JOB = "outbox-wake"
POLL_JOB = "outbox-poll"
MARK_WINDOW = 0.1  # seconds outcomes may gather before they are written together
MARK_MAX = 100  # outcomes written in one transaction at most
RECHECK_AFTER = 0.5  # seconds a claimed message may wait for a worker before it is checked again


@dataclass(frozen=True, slots=True)
class _Claimed:
    context: MessageContext
    at: float  # time.monotonic() of the claim


@dataclass(frozen=True, slots=True)
class _Sent:
    outcome: delivery.Outcome | None  # None: withdrawn or lost before it was sent


@dataclass(frozen=True, slots=True)
class SenderConfig:
    """How the sender writes, retries and paces messages."""

    base_url: str
    organizer: Address
    join_early: timedelta = timedelta(minutes=15)
    max_attempts: int = 5
    retry: timedelta = timedelta(minutes=1)
    poll: timedelta = timedelta(minutes=1)
    send_timeout: float = 30.0
    concurrency: int = 10  # messages in flight, each worker with its own SMTP connection
    batch: int = 50  # rows claimed per transaction; few, so none waits long between claim and send
    no_show_after: timedelta | None = timedelta(minutes=15)  # None: no no-show follow-ups


class Sender:
    """Claims due outbox rows and sends each by e-mail or SMS, once."""

    def __init__(
        self,
        db: Database,
        config: SenderConfig,
        clock: Callable[[], datetime],
        mail_transport: mail.MailTransport,
        sms_transport: sms.SmsTransport,
    ) -> None:
        self.db = db
        self.config = config
        self.clock = clock
        self.mail = mail_transport
        self.sms = sms_transport
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(config.concurrency)
        self._scheduler: AsyncIOScheduler | None = None
        self._leader: Connection | None = None
        # Set when a pass has run and no nudge waits (the start-up pass included).
        self.idle = asyncio.Event()
        self._nudges = 0
        self._stopped = False

    # --- one pass -----------------------------------------------------------------------

    async def run_due(self, now: datetime | None = None) -> Counter[str]:
        """Send every message due by `now` (default: the clock); return counts by outcome.

        One task claims due rows `batch` at a time (one transaction each) and queues them;
        `concurrency` workers send them, each over its own kept SMTP connection; one task
        records the outcomes, as many per transaction as have come in meanwhile.
        """
        async with self._lock:
            now = now or self.clock()
            report: Counter[str] = Counter()
            if self._stopped:
                return report
            requeued = await self.db.write(delivery.requeue_stale, now)
            if requeued:
                log.warning("outbox claims expired; messages retried", extra={"count": requeued})
            if self.config.no_show_after is not None:
                missed = await self.db.write(outbox.detect_no_shows, now, self.config.no_show_after)
                report["no_show"] += len(missed)
            workers = max(self.config.concurrency, 1)
            todo: asyncio.Queue[_Claimed | None] = asyncio.Queue(maxsize=workers)
            done: asyncio.Queue[_Sent | None] = asyncio.Queue()
            failed: Exception | None = None
            async with asyncio.TaskGroup() as group:
                recorder = group.create_task(self._record(done, report))
                senders = [group.create_task(self._work(todo, done, now)) for _ in range(workers)]
                try:
                    report["skipped"] += await self._claim(todo, now)
                except Exception as exc:
                    failed = exc  # what was claimed still goes out and is recorded first
                for _ in senders:
                    await todo.put(None)
                await asyncio.gather(*senders)
                done.put_nowait(None)
                await recorder
            if failed is not None:
                raise failed
            if report["skipped"] == 0:
                del report["skipped"]
            return report

    async def _claim(self, todo: asyncio.Queue[_Claimed | None], now: datetime) -> int:
        """Claim due rows batch by batch into `todo` until none is left; return how many were withdrawn."""
        withdrawn = 0
        limit = max(self.config.batch, 1)
        while not self._stopped:
            claimed = await self.db.write(delivery.claim_due, now, self.config.base_url, limit)
            withdrawn += claimed.rows - len(claimed.contexts)
            at = time.monotonic()
            for ctx in claimed.contexts:
                await todo.put(_Claimed(ctx, at))
            if claimed.rows < limit:
                break  # nothing more is due (or other senders hold the rest)
        return withdrawn

    async def _work(
        self, todo: asyncio.Queue[_Claimed | None], done: asyncio.Queue[_Sent | None], now: datetime
    ) -> None:
        session = mail.open_session(self.mail)
        try:
            while (item := await todo.get()) is not None:
                done.put_nowait(await self._one(item, session, now))
        finally:
            await session.close()

    async def _one(self, item: _Claimed, session: mail.MailSession, now: datetime) -> _Sent:
        ctx = item.context
        message_id = ctx.message.id
        assert message_id is not None
        # One that waited for a free worker is checked again: its booking may have changed meanwhile.
        if time.monotonic() - item.at > RECHECK_AFTER and not await self.db.write(
            delivery.still_ours, message_id, ctx.claim_token, self.clock()
        ):
            return _Sent(None)
        error, permanent = "", False
        try:
            async with asyncio.timeout(self.config.send_timeout):  # no task per message, unlike wait_for
                await self._send(ctx, now, session)
        except mail.SendError as exc:
            error, permanent = str(exc), exc.permanent
        except TimeoutError:
            error = f"no answer within {self.config.send_timeout:g} s"
        except Exception as exc:
            log.exception("sending an outbox message failed", extra={"message_id": message_id})
            error = f"{type(exc).__name__}: {exc}"
        return _Sent(delivery.Outcome(message_id, ctx.claim_token, error, permanent))

    async def _record(self, done: asyncio.Queue[_Sent | None], report: Counter[str]) -> None:
        """Write outcomes as they come, all that have queued up since the last write in one go."""
        finished = False
        while not finished:
            batch = [await done.get()]
            # Let more finish first (sending goes on meanwhile): one transaction records them all.
            deadline = time.monotonic() + MARK_WINDOW
            while None not in batch and len(batch) < MARK_MAX and time.monotonic() < deadline:
                await asyncio.sleep(MARK_WINDOW / 10)
                while not done.empty():
                    batch.append(done.get_nowait())
            finished = None in batch
            outcomes = []
            for sent in batch:
                if sent is None:
                    continue
                if sent.outcome is None:
                    report["skipped"] += 1
                else:
                    outcomes.append(sent.outcome)
            if not outcomes:
                continue
            states = await self.db.write(
                delivery.mark_results, outcomes, self.clock(), self.config.max_attempts, self.config.retry
            )
            for o in outcomes:
                state = states.get(o.message_id)
                if not o.error:
                    report["sent"] += 1
                    continue
                log.warning(
                    "outbox message not sent",
                    extra={"message_id": o.message_id, "error": o.error, "state": state},
                )
                report["failed" if state == OUTBOX_FAILED else "retry"] += 1

    async def _send(self, ctx: MessageContext, now: datetime, session: mail.MailSession) -> None:
        if ctx.message.channel == EMAIL:
            await session.send(mail.compose(ctx, now, self.config.organizer, self.config.join_early))
        else:
            body = sms.compose(ctx, self.config.join_early)
            await self.sms.send(ctx.message.recipient, body, ctx.message.key)

    # --- waking up ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the scheduler; its first run (right away) catches up on what is already due."""
        scheduler = AsyncIOScheduler(timezone=UTC)
        scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.config.poll.total_seconds(),
            id=POLL_JOB,
            next_run_time=datetime.now(UTC),
            misfire_grace_time=None,
            coalesce=True,
            max_instances=1,
        )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        """Stop waking up; a pass under way finishes first."""
        self._stopped = True
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        async with self._lock:
            pass
        if self._leader is not None:
            leader, self._leader = self._leader, None
            await asyncio.get_running_loop().run_in_executor(None, _unlock, leader)

    def nudge(self) -> None:
        """Look at the outbox now (a booking just changed in this process), if the scheduler runs."""
        if self._scheduler is None:
            return
        self._nudges += 1
        self.idle.clear()
        self._scheduler.add_job(
            self._tick,
            "date",
            run_date=datetime.now(UTC),
            id=WAKE_JOB,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=3,  # a nudge while a pass runs must queue behind it, not be skipped
        )

    async def _tick(self) -> None:
        nudges = self._nudges
        try:
            if self._stopped:
                return
            if not await self._lead():
                return
            await self.run_due()
            await self._plan_wake()
        except Exception:
            log.exception("outbox pass failed; the next wake-up tries again")
        finally:
            if self._nudges == nudges:  # else a later nudge's pass is on its way
                self.idle.set()

    async def _plan_wake(self) -> None:
        """Wake at the next due time, if that is before the next poll."""
        if self._scheduler is None:
            return
        due = await self.db.read(delivery.next_due)
        if due is None:
            return
        delay = max((due - self.clock()).total_seconds(), 0.0)
        if delay >= self.config.poll.total_seconds():
            return
        self._scheduler.add_job(
            self._tick,
            "date",
            run_date=datetime.now(UTC) + timedelta(seconds=delay),
            id=WAKE_JOB,
            replace_existing=True,
            misfire_grace_time=None,
            coalesce=True,
            max_instances=3,
        )

    async def _lead(self) -> bool:
        """Return whether this process sends: always on SQLite, the advisory-lock holder on PostgreSQL."""
        if self.db.dialect != "postgresql":
            return True
        if self._leader is not None:
            return True
        loop = asyncio.get_running_loop()
        conn, got = await loop.run_in_executor(None, self._try_lock)
        if got:
            self._leader = conn
            log.info("this process sends the outbox")
        return got

    def _try_lock(self) -> tuple[Any, bool]:
        conn = self.db.engine.connect()
        # Per schema, so deployments (and test schemas) sharing a database do not block each other.
        got = bool(
            conn.execute(
                text("SELECT pg_try_advisory_lock(hashtext('lastmile-outbox:' || current_schema()))")
            ).scalar()
        )
        conn.commit()
        if not got:
            conn.close()
        return conn, got


def _unlock(conn: Connection) -> None:
    # The connection goes back to the pool: release the session lock first.
    try:
        conn.execute(text("SELECT pg_advisory_unlock_all()"))
        conn.commit()
    finally:
        conn.close()
