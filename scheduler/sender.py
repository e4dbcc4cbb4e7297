"""The sender: one APScheduler 3 scheduler per deployment wakes it to send what the outbox has due.

The database is the truth. The scheduler only says when to look: at start-up (catching up
on everything already due), at the next due time, and every `poll` as a safety net for rows
written by other processes. Jobs have no misfire limit and coalesce, so a late wake-up runs
once instead of being skipped. On PostgreSQL a session advisory lock picks the one process
that sends; claims in the outbox keep even two senders from sending a message twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text
from sqlalchemy.engine import Connection

from caserecord.db import Database
from scheduler import mail, outbox, sms
from scheduler.outbox import EMAIL, MessageContext

log = logging.getLogger(__name__)
WAKE_JOB = "outbox-wake"
POLL_JOB = "outbox-poll"


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
    concurrency: int = 10
    batch: int = 200
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
        """Send every message due by `now` (default: the clock); return counts by outcome."""
        async with self._lock:
            now = now or self.clock()
            report: Counter[str] = Counter()
            if self._stopped:
                return report
            requeued = await self.db.write(outbox.requeue_stale, now)
            if requeued:
                log.warning("outbox claims expired; messages retried", extra={"count": requeued})
            if self.config.no_show_after is not None:
                missed = await self.db.write(outbox.detect_no_shows, now, self.config.no_show_after)
                report["no_show"] += len(missed)
            while True:
                ids = await self.db.read(outbox.due_ids, now, self.config.batch)
                if not ids:
                    break
                outcomes = await asyncio.gather(*(self._one(i, now) for i in ids))
                report.update(outcomes)
                if len(ids) < self.config.batch or all(o == "skipped" for o in outcomes):
                    break
            return report

    async def _one(self, message_id: int, now: datetime) -> str:
        async with self._slots:
            ctx = await self.db.write(outbox.claim, message_id, now, self.config.base_url)
            if ctx is None:
                return "skipped"
            error, permanent = "", False
            try:
                await asyncio.wait_for(self._send(ctx, now), self.config.send_timeout)
            except mail.SendError as exc:
                error, permanent = str(exc), exc.permanent
            except TimeoutError:
                error = f"no answer within {self.config.send_timeout:g} s"
            except Exception as exc:
                log.exception("sending an outbox message failed", extra={"message_id": message_id})
                error = f"{type(exc).__name__}: {exc}"
            if not error:
                await self.db.write(outbox.mark_sent, message_id, ctx.claim_token, self.clock())
                return "sent"
            state = await self.db.write(
                outbox.mark_failed,
                message_id,
                ctx.claim_token,
                self.clock(),
                error,
                0 if permanent else self.config.max_attempts,
                self.config.retry,
            )
            log.warning(
                "outbox message not sent", extra={"message_id": message_id, "error": error, "state": state}
            )
            return "failed" if state == "failed" else "retry"

    async def _send(self, ctx: MessageContext, now: datetime) -> None:
        if ctx.message.channel == EMAIL:
            await self.mail.send(mail.compose(ctx, now, self.config.organizer, self.config.join_early))
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
        due = await self.db.read(outbox.next_due)
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
