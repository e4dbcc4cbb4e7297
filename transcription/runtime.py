"""The transcription side of a running process: one Whisper engine, live captions, the after-visit work.

The app factory makes one `Transcription` and hands `sink` to the visits package (each visit's
audio streams there) and `after_visit.draft` as what runs when a visit ends. The engine loads its
model on the first utterance, off the event loop; `close` frees it once the visits are stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from caserecord.db import Database
from transcription.after_visit import AfterVisit, PartsOf
from transcription.engine import Engine, EngineOptions
from transcription.live import LiveTranscription, Publish
from transcription.note import Drafter
from transcription.stream import StreamingTranscriber


class Transcription:
    """The engine (None when transcription is off), live transcription and the after-visit jobs."""

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        engine: EngineOptions | None,
        drafter: Drafter,
        parts_of: PartsOf,
    ) -> None:
        self.engine = Engine(engine) if engine is not None else None
        self.live = LiveTranscription(db, self.engine) if self.engine is not None else None
        self.after_visit = AfterVisit(db, clock, self.engine, drafter, parts_of)

    def sink(self, visit_id: int, publish: Publish) -> StreamingTranscriber | None:
        """Return the sink a visit's consenting speakers stream to (None: not transcribed)."""
        return self.live.sink(visit_id, publish) if self.live is not None else None

    async def close(self) -> None:
        """Free the engine's model and threads."""
        if self.engine is not None:
            await asyncio.to_thread(self.engine.close)
