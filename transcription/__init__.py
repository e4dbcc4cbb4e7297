"""Transcription: the Whisper engine and the streaming, per-speaker segmenter.

The visits package feeds each speaker's audio to a :class:`StreamingTranscriber`; segments come
back through its callback, in visit time, as soon as each utterance is transcribed.
"""

from transcription.audio import SAMPLE_RATE, pcm_to_float, read_audio
from transcription.engine import Engine, EngineOptions, EngineStats, transcribe_file
from transcription.model import ModelNotFoundError
from transcription.results import Segment, Word
from transcription.stream import SegmenterOptions, StreamingTranscriber

__all__ = [
    "SAMPLE_RATE",
    "Engine",
    "EngineOptions",
    "EngineStats",
    "ModelNotFoundError",
    "Segment",
    "SegmenterOptions",
    "StreamingTranscriber",
    "Word",
    "pcm_to_float",
    "read_audio",
    "transcribe_file",
]
