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


def local_time(moment: datetime, tz_name: str, language: str) -> str:
    """Say a moment in a zone without naming it: "Tuesday 3 March 2026, 09:00"."""
    return when(moment, tz_name, language).rsplit(" (", 1)[0]


@dataclass(frozen=True, slots=True)
class PageWords:
    """Every phrase of the client's own page (`/c/<token>`), in one language."""

    lang: str  # the page's lang attribute
    title: str
    heading: str
    when: str
    with_: str
    status: str
    statuses: dict[str, str]
    join: str
    join_soon: str
    missed: str
    choose_new: str
    choose_other: str
    free_times: str
    move: str
    no_times: str
    cancel_heading: str
    cancel: str
    cutoff: str
    office_zone: str
    device_zone: str
    notices: dict[str, str]
    out_of_date: str
    already_cancelled: str
    too_late: str
    choose_listed: str
    slot_taken: str
    not_changed: str
    gone_title: str
    gone_heading: str
    gone_invalid: str
    gone_expired: str
    gone_contact: str


EN_PAGE = PageWords(
    lang="en",
    title="Your visit",
    heading="Your visit with {worker}",
    when="When:",
    with_="With:",
    status="Status:",
    statuses={"booked": "Booked", "cancelled": "Cancelled", "missed": "Missed"},
    join="Join visit",
    join_soon='A "Join visit" button appears here shortly before the visit starts.',
    missed="We missed you at this visit. You can choose a new time below.",
    choose_new="Choose a new time",
    choose_other="Choose another time",
    free_times="Free times with {worker}",
    move="Move my visit",
    no_times="There are no other free times in the next weeks. Call your worker to find one.",
    cancel_heading="Cancel",
    cancel="Cancel my visit",
    cutoff="Changes here are possible up to {hours} hours before the visit. "
    "To change it now, call your worker.",
    office_zone="Times are shown in {zone}, your worker's time zone.",
    device_zone="Times are shown in your device's time zone, {zone}.",
    notices={"moved": "Your visit has moved.", "cancelled": "Your visit is cancelled."},
    out_of_date="this page was out of date, so nothing was changed; here is your visit as it is now",
    already_cancelled="this visit is already cancelled",
    too_late="visits can be changed here up to {hours} hours before; please call your worker",
    choose_listed="choose one of the times listed",
    slot_taken="that time was just taken; please choose another one",
    not_changed="nothing was changed: {detail}",
    gone_title="Link not valid",
    gone_heading="This link does not work any more",
    gone_invalid="This link is not valid. Use the newest link your agency sent you.",
    gone_expired="This link has expired because the visit is over.",
    gone_contact="If you need a new visit, please contact your agency.",
)

ES_PAGE = PageWords(
    lang="es",
    title="Su cita",
    heading="Su cita con {worker}",
    when="Cuándo:",
    with_="Con:",
    status="Estado:",
    statuses={"booked": "Reservada", "cancelled": "Cancelada", "missed": "Perdida"},
    join="Entrar a la cita",
    join_soon='Un botón "Entrar a la cita" aparece aquí poco antes de que empiece la cita.',
    missed="Le esperábamos en esta cita. Puede elegir otra hora abajo.",
    choose_new="Elija una nueva hora",
    choose_other="Elija otra hora",
    free_times="Horas libres con {worker}",
    move="Cambiar mi cita",
    no_times="No hay otras horas libres en las próximas semanas. Llame a su trabajador para buscar una.",
    cancel_heading="Cancelar",
    cancel="Cancelar mi cita",
    cutoff="Puede hacer cambios aquí hasta {hours} horas antes de la cita. Para cambiarla ahora, "
    "llame a su trabajador.",
    office_zone="Las horas se muestran en {zone}, la zona horaria de su trabajador.",
    device_zone="Las horas se muestran en la zona horaria de su dispositivo, {zone}.",
    notices={"moved": "Su cita cambió de hora.", "cancelled": "Su cita está cancelada."},
    out_of_date="esta página no estaba al día, así que no se cambió nada; aquí está su cita como está ahora",
    already_cancelled="esta cita ya está cancelada",
    too_late="las citas se pueden cambiar aquí hasta {hours} horas antes; por favor llame a su trabajador",
    choose_listed="elija una de las horas de la lista",
    slot_taken="alguien acaba de tomar esa hora; por favor elija otra",
    not_changed="no se cambió nada: {detail}",
    gone_title="Enlace no válido",
    gone_heading="Este enlace ya no funciona",
    gone_invalid="Este enlace no es válido. Use el enlace más reciente que le envió su agencia.",
    gone_expired="Este enlace caducó porque la cita ya pasó.",
    gone_contact="Si necesita una nueva cita, comuníquese con su agencia.",
)


def page_words(language: str) -> PageWords:
    """Return the client page's phrases in `language` ("es-MX" counts as "es"), English if we lack it."""
    return ES_PAGE if words(language) is ES else EN_PAGE


def accepted_language(header: str) -> str:
    """Pick the first language of an Accept-Language header that we have ("en" when none)."""
    for part in header.split(","):
        tag = part.split(";", 1)[0].strip().lower().split("-")[0]
        if tag in LANGUAGES:
            return tag
    return "en"
