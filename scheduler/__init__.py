"""Scheduling: office hours and their slots, bookings, walk-in hours, the client's page, the outbox.

Modules, each a small public API over the case record (functions take an open session):
`hours` (the block fields and the slots they give), `blocks` (publish, withdraw, cancel a date),
`bookings`, `walk_ins`, `follow_up`, `calendar` (the worker's weeks), `calendars` (feed, invite),
`client_page`, `outbox` (messages as rows) and `delivery` (claiming and recording them), `sender`
(the runtime that sends them), `mail`, `sms`, `texts`, `ical`, `rules` (pure slot arithmetic),
`links` (the addresses people are sent) and `demo`.
"""

from scheduler.bookings import JoinPolicy
from scheduler.hours import BlockSpec
from scheduler.links import Links
from scheduler.sender import Sender, SenderConfig

__all__ = ["BlockSpec", "JoinPolicy", "Links", "Sender", "SenderConfig"]
