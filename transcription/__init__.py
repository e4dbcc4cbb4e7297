"""Transcription: the Whisper engine, streaming per speaker, live captions, and the note drafters.

The visits package feeds each speaker's audio to the sink `Transcription.sink` gives it (a
:class:`StreamingTranscriber`); segments are stored and captioned as each utterance is
transcribed. When the visit ends, `Transcription.after_visit` transcribes what was missed and
drafts and files the note.
"""

from transcription.after_visit import AfterVisit
from transcription.audio import SAMPLE_RATE, pcm_to_float, read_audio
from transcription.drafter import DeterministicDrafter, draft_note
from transcription.engine import Engine, EngineOptions, EngineStats, transcribe_file
from transcription.live import LiveTranscription
from transcription.llm import OpenAICompatibleDrafter
from transcription.model import ModelNotFoundError
from transcription.note import (
    ActionItem,
    Drafter,
    DraftNote,
    FollowUp,
    NoteHeader,
    Quote,
    RiskFlag,
    VisitContext,
)
from transcription.results import Segment, Word
from transcription.risk import RiskCategory
from transcription.runtime import Transcription
from transcription.stream import SegmenterOptions, StreamingTranscriber

__all__ = [
    "SAMPLE_RATE",
    "ActionItem",
    "AfterVisit",
    "DeterministicDrafter",
    "DraftNote",
    "Drafter",
    "Engine",
    "EngineOptions",
    "EngineStats",
    "FollowUp",
    "LiveTranscription",
    "ModelNotFoundError",
    "NoteHeader",
    "OpenAICompatibleDrafter",
    "Quote",
    "RiskCategory",
    "RiskFlag",
    "Segment",
    "SegmenterOptions",
    "StreamingTranscriber",
    "Transcription",
    "VisitContext",
    "Word",
    "draft_note",
    "pcm_to_float",
    "read_audio",
    "transcribe_file",
]
