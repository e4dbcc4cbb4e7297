"""Transcription: the Whisper engine and the streaming, per-speaker segmenter.

The visits package feeds each speaker's audio to a :class:`StreamingTranscriber`; segments come
back through its callback, in visit time, as soon as each utterance is transcribed.
"""

from transcription.audio import SAMPLE_RATE, pcm_to_float, read_audio
from transcription.drafter import DeterministicDrafter, draft_note
from transcription.engine import Engine, EngineOptions, EngineStats, transcribe_file
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
from transcription.stream import SegmenterOptions, StreamingTranscriber

__all__ = [
    "SAMPLE_RATE",
    "ActionItem",
    "DeterministicDrafter",
    "DraftNote",
    "Drafter",
    "Engine",
    "EngineOptions",
    "EngineStats",
    "FollowUp",
    "ModelNotFoundError",
    "NoteHeader",
    "OpenAICompatibleDrafter",
    "Quote",
    "RiskCategory",
    "RiskFlag",
    "Segment",
    "SegmenterOptions",
    "StreamingTranscriber",
    "VisitContext",
    "Word",
    "draft_note",
    "pcm_to_float",
    "read_audio",
    "transcribe_file",
]
