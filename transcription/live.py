"""Live transcription: each consenting speaker's audio becomes segments while the visit runs.

Each segment is stored in the case record as it comes, shown to everyone in the visit as a
caption, and any risk it names is offered to the worker at once (never to the client) to confirm.
The visit's people are reached through the `publish` callable the visits package hands in.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

from caserecord import transcripts
from caserecord.db import Database
from transcription.engine import Engine
from transcription.results import Segment
from transcription.risk import RISK_LABELS, find_risks
from transcription.stream import StreamingTranscriber

Publish = Callable[[int, dict[str, Any], str | None], Awaitable[None]]


class LiveTranscription:
    """Makes each visit's streaming transcriber and files what it hears."""

    def __init__(self, db: Database, engine: Engine) -> None:
        self.db = db
        self.engine = engine

    def sink(self, visit_id: int, publish: Publish) -> StreamingTranscriber:
        """Return the transcriber a visit's audio streams to."""
        return StreamingTranscriber(self.engine, functools.partial(self.on_segment, visit_id, publish))

    async def on_segment(self, visit_id: int, publish: Publish, seg: Segment) -> None:
        """Store one segment; caption it to everyone; offer the worker each risk it names."""
        words = [(w.start, w.end, w.text, w.probability) for w in seg.words]
        row = await self.db.write(
            transcripts.add_segment, visit_id, seg.speaker, seg.start, seg.end, seg.text, words
        )
        if row is None:  # already stored (the same utterance again)
            return
        role = seg.speaker.split(":")[0]
        caption = {"type": "caption", "speaker": role, "start": seg.start, "end": seg.end, "text": row.text}
        await publish(visit_id, caption, None)
        for risk in find_risks(row.text, role):
            suggestion = {
                "type": "risk",
                "category": risk.category.value,
                "label": RISK_LABELS[risk.category],
                "quote": row.text,
                "start": row.start_ms / 1000,
            }
            await publish(visit_id, suggestion, "worker")
