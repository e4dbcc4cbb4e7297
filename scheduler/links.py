"""The addresses people are sent: one home for how a join link, a client's page or a feed is spelled."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Links:
    """The public links of one deployment, under `base` (the address people reach it at)."""

    base: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "base", self.base.rstrip("/"))

    @staticmethod
    def join_path(token: str) -> str:
        """The client's join page, on this site."""
        return f"/j/{token}"

    def join(self, token: str) -> str:
        """The client's join link, as sent."""
        return self.base + self.join_path(token)

    @staticmethod
    def client_page_path(token: str) -> str:
        return f"/c/{token}"

    def client_page(self, token: str) -> str:
        """The client's own page, as sent in every message."""
        return self.base + self.client_page_path(token)

    def walk_in(self, token: str) -> str:
        """A worker's walk-in link."""
        return f"{self.base}/w/{token}"

    def feed(self, token: str) -> str:
        """A worker's subscribable calendar feed."""
        return f"{self.base}/calendar/{token}.ics"

    def sms_inbound(self) -> str:
        """Where the SMS provider posts replies (what its signature covers)."""
        return f"{self.base}/sms/inbound"
