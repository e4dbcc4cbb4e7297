"""The words of messages to clients, in the languages we have (English and Spanish)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scheduler.rules import zone

LANGUAGES = ("en", "es")


@dataclass(frozen=True, slots=True)
class Words:
    """Every phrase a message is made of, in one language."""

    weekdays: tuple[str, ...]
    months: tuple[str, ...]
    hello: str
    subjects: dict[str, str]
    lines: dict[str, str]
    office_closed: str
    join: str
    kiosk: str
    page: str
    reminder_subject: str
    reminder_line: str
    footer: str


EN = Words(
    weekdays=("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
    months=(
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    hello="Hello {name},",
    subjects={
        "invitation": "Your visit with {worker}: {when}",
        "rescheduled": "Your visit with {worker} has moved: {when}",
        "cancelled": "Cancelled: your visit with {worker} on {when}",
        "no_show": "We missed you: choose a new time with {worker}",
        "no_show_worker": "No-show: {client}, {when}",
    },
    lines={
        "invitation": "Your virtual visit with {worker} is booked for {when}.",
        "rescheduled": "Your virtual visit with {worker} has moved to {when}.",
        "cancelled": "Your virtual visit with {worker} on {when} is cancelled.",
        "no_show": "We missed you at your visit with {worker} on {when}. You can choose a new time.",
        "no_show_worker": "{client} did not join the visit on {when}. They were offered a new time.",
    },
    office_closed="The office hours that day were cancelled. We are sorry.",
    join="Join from your phone or computer: {url}",
    kiosk="At a kiosk, enter the code {code}.",
    page="See, move or cancel your visit: {url}",
    reminder_subject="Reminder: your visit with {worker}, {when}",
    reminder_line="A reminder: your virtual visit with {worker} is on {when}.",
    footer="This message was sent by your agency's Lastmile visit service.",
)

ES = Words(
    weekdays=("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
    months=(
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ),
    hello="Hola {name}:",
    subjects={
        "invitation": "Su cita con {worker}: {when}",
        "rescheduled": "Su cita con {worker} cambió: {when}",
        "cancelled": "Cancelada: su cita con {worker} del {when}",
        "no_show": "Le esperábamos: elija otra hora con {worker}",
        "no_show_worker": "No se presentó: {client}, {when}",
    },
    lines={
        "invitation": "Su cita virtual con {worker} está reservada para el {when}.",
        "rescheduled": "Su cita virtual con {worker} cambió al {when}.",
        "cancelled": "Su cita virtual con {worker} del {when} está cancelada.",
        "no_show": "Le esperábamos en su cita con {worker} del {when}. Puede elegir otra hora.",
        "no_show_worker": "{client} no entró a la cita del {when}. Se le ofreció otra hora.",
    },
    office_closed="Ese día no hay horario de atención. Lo sentimos.",
    join="Entre desde su teléfono o computadora: {url}",
    kiosk="En un quiosco, escriba el código {code}.",
    page="Vea, cambie o cancele su cita: {url}",
    reminder_subject="Recordatorio: su cita con {worker}, {when}",
    reminder_line="Le recordamos: su cita virtual con {worker} es el {when}.",
    footer="Este mensaje lo envía el servicio de citas Lastmile de su agencia.",
)

_BY_LANGUAGE = {"en": EN, "es": ES}


def words(language: str) -> Words:
    """Return the phrases in `language` ("es-MX" counts as "es"), English if we lack it."""
    return _BY_LANGUAGE.get(language.lower().split("-")[0], EN)


def when(moment: datetime, tz_name: str, language: str) -> str:
    """Say a moment in a zone as people do: "Tuesday 3 March 2026, 09:00 (America/Los_Angeles)"."""
    w = words(language)
    local = moment.astimezone(zone(tz_name))
    day = w.weekdays[local.weekday()]
    month = w.months[local.month - 1]
    if w is ES:
        return f"{day} {local.day} de {month} de {local.year}, {local:%H:%M} ({tz_name})"
    return f"{day} {local.day} {month} {local.year}, {local:%H:%M} ({tz_name})"


@dataclass(frozen=True, slots=True)
class Content:
    """A message's subject and paragraphs, and the links it offers."""

    subject: str
    greeting: str
    lines: tuple[str, ...]
    join_url: str | None
    page_url: str | None
    footer: str


def compose(
    kind: str,
    *,
    language: str,
    client_name: str,
    worker_name: str,
    start: datetime,
    timezone: str,
    join_url: str | None,
    page_url: str | None,
    kiosk_code: str | None,
    cancel_reason: str | None,
    greet: str | None = None,
) -> Content:
    """Write the message of `kind` (invitation, reminder_*, rescheduled, cancelled, no_show)."""
    w = words(language)
    fields = {"worker": worker_name, "client": client_name, "when": when(start, timezone, language)}
    if kind.startswith("reminder_"):
        subject, first = w.reminder_subject, w.reminder_line
    else:
        subject, first = w.subjects[kind], w.lines[kind]
    lines = [first.format(**fields)]
    if kind == "cancelled" and cancel_reason and cancel_reason.startswith("office hours"):
        lines.append(w.office_closed)
    if join_url:
        lines.append(w.join.format(url=join_url))
        if kiosk_code:
            lines.append(w.kiosk.format(code=kiosk_code))
    if page_url and kind != "cancelled":
        lines.append(w.page.format(url=page_url))
    return Content(
        subject=subject.format(**fields),
        greeting=w.hello.format(name=greet or client_name),
        lines=tuple(lines),
        join_url=join_url,
        page_url=page_url,
        footer=w.footer,
    )
