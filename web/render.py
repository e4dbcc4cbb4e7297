"""HTML answers: the app's one Jinja environment and the headers every page carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from scheduler.calendar import day_label
from scheduler.rules import WEEKDAYS

TEMPLATES = Path(__file__).parent / "templates"
WEEKDAY_NAMES = dict(
    zip(WEEKDAYS, ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"), strict=True)
)


def sentence(text: str) -> str:
    """Capitalise the first letter only (messages from the case record start in lower case)."""
    return text[:1].upper() + text[1:]


class Templates:
    """The pages' templates (one environment per app: no module globals)."""

    def __init__(self, folder: Path = TEMPLATES) -> None:
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(folder),
            autoescape=jinja2.select_autoescape(["html"]),
            undefined=jinja2.StrictUndefined,
        )
        self.env.globals["weekday_names"] = WEEKDAY_NAMES
        self.env.filters["sentence"] = sentence
        self.env.filters["day_label"] = day_label

    def page(self, name: str, status: int = 200, **ctx: Any) -> web.Response:
        """Render a template as an HTML answer that no cache keeps and no frame shows."""
        html = self.env.get_template(name).render(**ctx)
        resp = web.Response(text=html, content_type="text/html", status=status)
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["Content-Security-Policy"] = "default-src 'self'; frame-ancestors 'none'"
        # Not "no-referrer": with it browsers send `Origin: null` on form posts, which the
        # cross-site check rightly refuses, so no form would work.
        resp.headers["Referrer-Policy"] = "same-origin"
        return resp
